/* netcore._speedups: recv(2) and send(2) for the engine's hot path, without the GIL
 * hand-off and the exception that socket.recv/socket.send cost.
 *
 * Optional: setup.py builds it when a C compiler is there, and netcore/_engine.py falls
 * back to os.read/os.write (the same syscalls with flags 0) when it is missing or when
 * NETCORE_NO_EXTENSIONS is set. Both forms behave the same (the tests run both), except
 * on a socket that a copy switched to blocking mode, where os.read/os.write wait (without
 * the GIL), as the stdlib's socket calls did.
 *
 * Why it is faster: these calls never wait (MSG_DONTWAIT: the descriptor's own
 * O_NONBLOCK is shared with every copy of it, and a copy handed out by to_socket() may
 * turn it off), so they can keep the GIL (the stdlib releases and retakes it around
 * every call: about 600 instructions each); a receive goes into one static buffer,
 * guarded by the GIL, and is copied into a bytes object of the size that came (the
 * stdlib allocates `size` bytes, then shrinks them); "would block" is a return value,
 * not an exception.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* The largest receive recv() takes: the engine's reads of up to 64 KiB come here. */
#define RECV_MAX 65536

/* Only touched with the GIL held, and no call inside gives it up. */
static char recv_buffer[RECV_MAX];

/* Checks that `name` got 2 arguments and puts the first, a descriptor, in `fd`: 0, or
 * -1 with an exception set. A negative descriptor, such as a closed socket's fileno(),
 * goes to the syscall, which answers EBADF. */
static int
fd_and_one_more(const char *name, PyObject *const *args, Py_ssize_t nargs, int *fd)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (%zd given)", name, nargs);
        return -1;
    }
    long value = PyLong_AsLong(args[0]);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "file descriptor out of range: %ld", value);
        return -1;
    }
    *fd = (int)value;
    return 0;
}

PyDoc_STRVAR(recv_doc,
"recv(fd, size, /)\n--\n\n"
"One recv(2) of at most `size` (0..RECV_MAX) bytes from the socket `fd`, never waiting:\n"
"the bytes (b'' at end of stream), or None when none are there yet. Other failures\n"
"raise the matching OSError subclass.");

static PyObject *
speedups_recv(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    if (fd_and_one_more("recv", args, nargs, &fd) < 0) {
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 0 || size > RECV_MAX) {
        PyErr_Format(PyExc_ValueError, "recv() size must be 0..%d, got %zd", RECV_MAX, size);
        return NULL;
    }
    for (;;) {
        /* read(2) for 0 bytes, as the fallback's os.read: it returns 0 at once, where a
         * recv(2) of 0 bytes would take a datagram or answer EAGAIN. Never asked for. */
        ssize_t n = size ? recv(fd, recv_buffer, (size_t)size, MSG_DONTWAIT)
                         : read(fd, recv_buffer, 0);
        if (n >= 0) {
            return PyBytes_FromStringAndSize(recv_buffer, n);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            Py_RETURN_NONE;
        }
        if (errno != EINTR) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() < 0) { /* a handler raised: as the stdlib does (PEP 475) */
            return NULL;
        }
    }
}

PyDoc_STRVAR(send_doc,
"send(fd, data, /)\n--\n\n"
"One send(2) of the bytes-like `data` (C-contiguous, else BufferError) on the socket\n"
"`fd`, never waiting: the count sent, or -1 when the kernel's buffer is full.\n"
"Other failures raise the matching OSError subclass.");

static PyObject *
speedups_send(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    if (fd_and_one_more("send", args, nargs, &fd) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    ssize_t n;
    int failure;
    for (;;) {
        n = send(fd, view.buf, (size_t)view.len, MSG_DONTWAIT);
        failure = errno; /* releasing the buffer may run Python code (PEP 688) */
        if (n >= 0 || failure != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyBuffer_Release(&view);
    if (n >= 0) {
        return PyLong_FromSsize_t(n);
    }
    if (failure == EAGAIN || failure == EWOULDBLOCK) {
        return PyLong_FromLong(-1);
    }
    errno = failure;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyMethodDef speedups_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))speedups_recv, METH_FASTCALL, recv_doc},
    {"send", (PyCFunction)(void (*)(void))speedups_send, METH_FASTCALL, send_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "netcore._speedups",
    .m_doc = "recv(2) and send(2) for netcore's engine, keeping the GIL (optional).",
    .m_size = -1, /* one static buffer: not for isolated subinterpreters */
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module = PyModule_Create(&speedups_module);
    /* VERSION: what netcore/_engine.py checks, so that a stale in-place build is not
     * used; raise it with every change of behaviour here. */
    if (module != NULL && (PyModule_AddIntConstant(module, "RECV_MAX", RECV_MAX) < 0 ||
                           PyModule_AddIntConstant(module, "VERSION", 2) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
