/* netcore._speedups: recv(2), send(2) and accept4(2) for the engine's hot path, without the GIL
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
 *
 * It also has the step of ByteStream.read that every round trip of a server takes (see
 * ReadOp below): the same logic as the Python method's, over SocketIO's slots; and
 * step(), which the facade steps its coroutines with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* The largest receive recv() takes: the engine's reads of up to 64 KiB come here. */
#define RECV_MAX 65536

/* Only touched with the GIL held, and no call inside gives it up. */
static char recv_buffer[RECV_MAX];

/* 0 if `name` got `expected` arguments, else -1 with TypeError set. */
static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected,
                     nargs);
        return -1;
    }
    return 0;
}

/* Puts the descriptor number `number` in `fd`: 0, or -1 with an exception set. A negative
 * descriptor, such as a closed socket's fileno(), goes to the syscall, which answers
 * EBADF. */
static int
fd_of(PyObject *number, int *fd)
{
    long value = PyLong_AsLong(number);
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

/* Checks that `name` got 2 arguments and puts the first, a descriptor, in `fd`: 0, or
 * -1 with an exception set. */
static int
fd_and_one_more(const char *name, PyObject *const *args, Py_ssize_t nargs, int *fd)
{
    return check_nargs(name, nargs, 2) < 0 ? -1 : fd_of(args[0], fd);
}

/* One receive of at most `size` bytes into recv_buffer, never waiting, retried on EINTR:
 * the count (0 at end of stream), -2 when nothing is there yet, or -1 with an exception
 * set. The caller copies the bytes out before any Python code can run. */
static ssize_t
recv_once(int fd, Py_ssize_t size)
{
    for (;;) {
        /* read(2) for 0 bytes, as the fallback's os.read: it returns 0 at once, where a
         * recv(2) of 0 bytes would take a datagram or answer EAGAIN. Never asked for. */
        ssize_t n = size ? recv(fd, recv_buffer, (size_t)size, MSG_DONTWAIT)
                         : read(fd, recv_buffer, 0);
        if (n >= 0) {
            return n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -2;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) { /* a handler raised: as the stdlib does (PEP 475) */
            return -1;
        }
    }
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
    ssize_t n = recv_once(fd, size);
    if (n == -2) {
        Py_RETURN_NONE;
    }
    return n < 0 ? NULL : PyBytes_FromStringAndSize(recv_buffer, n);
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


#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) /* accept4(2): Linux, the BSDs */
PyDoc_STRVAR(accept_doc,
"accept(fd, /)\n--\n\n"
"One accept4(2) on the listening socket `fd`: the new connection's descriptor, already\n"
"non-blocking and close-on-exec, or None when none is queued. Other failures raise the\n"
"matching OSError subclass. It waits only if `fd` is in blocking mode (without the GIL).");

static PyObject *
speedups_accept(PyObject *Py_UNUSED(module), PyObject *number)
{
    int fd;
    if (fd_of(number, &fd) < 0) {
        return NULL;
    }
    for (;;) {
        /* No address: the engine's callers never use it (peer_address asks the kernel).
         * Unlike recv and send, accept has no MSG_DONTWAIT: on a listener that a copy
         * switched to blocking mode it waits, so it lets other threads run meanwhile. */
        int conn;
        Py_BEGIN_ALLOW_THREADS
        conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0 && errno == ENOSYS) { /* a kernel or sandbox without accept4: */
            conn = accept(fd, NULL, NULL); /* the same in three calls, as CPython does */
            if (conn >= 0 && (fcntl(conn, F_SETFL, O_NONBLOCK | fcntl(conn, F_GETFL)) < 0 ||
                              fcntl(conn, F_SETFD, FD_CLOEXEC) < 0)) {
                int failure = errno;
                close(conn);
                errno = failure;
                conn = -1;
            }
        }
        Py_END_ALLOW_THREADS
        if (conn >= 0) {
            PyObject *number = PyLong_FromLong(conn);
            if (number == NULL) {
                close(conn);
            }
            return number;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            Py_RETURN_NONE;
        }
        if (errno != EINTR) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
    }
}
#endif

/* -- ReadOp: the waiting and receiving of ByteStream.read ---------------------------- */

/* ByteStream.read (netcore/_stream.py) awaits `read_op(io, size)` for a plain read of
 * 1..RECV_MAX bytes once `bind()` was called; its Python body is the same logic, and is
 * what runs without the speedups. The op is an awaitable that does what the body does:
 * wait first right after a short receive, then receive; wait again while nothing comes.
 * It waits by yielding the engine's future, as `await fut` does, made on the loop of the
 * last wait (`io._loop`) when the socket is registered there; a task of another loop
 * refuses that future (RuntimeError), and the read then moves (io.move_here()) and waits
 * again. Every other case calls the same SocketIO methods as the Python body.
 *
 * SocketIO's slots are read and written at the offsets its member descriptors give (read
 * once by bind()), as the interpreter's specialized LOAD_ATTR_SLOT does. */

enum {
    S_CLOSED, S_READ_SHUT, S_DRAINED, S_DEADLINE, S_READING, S_READER, S_LOOP, S_SOCK, S_FD,
    S_IS_STREAM, N_SLOTS
};
static const char *const slot_names[N_SLOTS] = {
    "closed", "read_shut", "drained", "deadline", "_reading", "reader", "_loop", "sock", "fd",
    "is_stream",
};
static Py_ssize_t slot_offset[N_SLOTS];
static Py_ssize_t sock_closed_offset; /* socket.socket's `_closed` slot */
static PyTypeObject *socketio_type;   /* these are set by bind(), strong references */
static PyTypeObject *socket_type;
static PyObject *closed_error;
static PyObject *running_loop; /* asyncio._get_running_loop */
static PyObject *empty_bytes;
static PyObject *str_create_future, *str_wait_for_read, *str_forget_reader, *str_move_here,
    *str_poll_readable, *str_fileno, *str_result, *str_done, *str_get_loop, *str_blocking,
    *str_io, *str_pending, *str_take_pending;

/* The slot's value (borrowed), or NULL with AttributeError if it was never set. */
static PyObject *
slot_get(PyObject *obj, Py_ssize_t offset, const char *name)
{
    PyObject *value = *(PyObject **)((char *)obj + offset);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'",
                     Py_TYPE(obj)->tp_name, name);
    }
    return value;
}

#define SLOT(io, i) slot_get((io), slot_offset[i], slot_names[i])

/* Sets the slot to `value` (a new reference is taken). */
static void
slot_set(PyObject *io, int i, PyObject *value)
{
    PyObject **where = (PyObject **)((char *)io + slot_offset[i]);
    Py_INCREF(value);
    Py_XSETREF(*where, value);
}

/* The truth of a slot: 1, 0, or -1 with an exception set. */
static int
slot_true(PyObject *io, int i)
{
    PyObject *value = SLOT(io, i);
    if (value == Py_True) {
        return 1;
    }
    if (value == Py_False) {
        return 0;
    }
    return value == NULL ? -1 : PyObject_IsTrue(value);
}

/* The offset of the writable object slot `name` of `type`, or -1 with an exception. */
static Py_ssize_t
member_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        return -1;
    }
    Py_ssize_t offset = -1;
    /* (Of `type` itself or a base: a slot of another class may lie past its objects.) */
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
        PyType_IsSubtype(type, ((PyDescrObject *)descr)->d_type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY)) {
            offset = member->offset;
        }
    }
    Py_DECREF(descr);
    if (offset < 0) {
        PyErr_Format(PyExc_TypeError, "%.100s.%s is not a writable object slot",
                     type->tp_name, name);
    }
    return offset;
}

PyDoc_STRVAR(bind_doc,
"bind(socket_io, socket, closed_error, get_running_loop, /)\n--\n\n"
"Tell read_op() the engine's SocketIO class (it reads its slots), socket.socket, the\n"
"ClosedError class and asyncio._get_running_loop. Called once, when netcore loads; again\n"
"with the same four, it does nothing, and with others (a reloaded netcore, another\n"
"interpreter's) RuntimeError: the state is one per process.");

static PyObject *
speedups_bind(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("bind", nargs, 4) < 0) {
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "bind() needs the SocketIO and socket classes");
        return NULL;
    }
    Py_ssize_t offsets[N_SLOTS];
    for (int i = 0; i < N_SLOTS; i++) {
        if ((offsets[i] = member_offset((PyTypeObject *)args[0], slot_names[i])) < 0) {
            return NULL;
        }
    }
    Py_ssize_t closed_offset = member_offset((PyTypeObject *)args[1], "_closed");
    if (closed_offset < 0) {
        return NULL;
    }
    if (socketio_type != NULL) { /* once per process: the state here is shared by all */
        if (args[0] == (PyObject *)socketio_type && args[1] == (PyObject *)socket_type &&
            args[2] == closed_error && args[3] == running_loop) {
            Py_RETURN_NONE;
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "read_op is bound to other classes already (a reloaded netcore, or "
                        "another interpreter's): this one reads in Python");
        return NULL;
    }
    memcpy(slot_offset, offsets, sizeof(offsets));
    sock_closed_offset = closed_offset;
    Py_INCREF(args[0]);
    Py_XSETREF(socketio_type, (PyTypeObject *)args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(socket_type, (PyTypeObject *)args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(closed_error, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(running_loop, args[3]);
    Py_RETURN_NONE;
}

typedef struct {
    PyObject_HEAD
    PyObject *io;     /* the SocketIO */
    PyObject *stream; /* made by read_method: the stream, whose kept bytes come first */
    PyObject *fut;    /* the future it waits on (yielded), or NULL */
    Py_ssize_t size;
    int done; /* it returned or raised: awaiting it again is an error, as for a coroutine */
    int started; /* stepped, thrown into or closed: else "never awaited" when dropped */
} ReadOp;

static PyTypeObject ReadOp_Type;

/* The descriptor to receive from: SocketIO.live_fd (a socket object closed behind our
 * back gives its own fileno(), -1 once really closed, so the syscall says EBADF). */
static int
live_fd(PyObject *io, int *fd)
{
    PyObject *sock = SLOT(io, S_SOCK);
    if (sock == NULL) {
        return -1;
    }
    PyObject *number;
    PyObject *closed = PyObject_TypeCheck(sock, socket_type)
                           ? *(PyObject **)((char *)sock + sock_closed_offset)
                           : NULL;
    if (closed == Py_False) {
        number = SLOT(io, S_FD);
        Py_XINCREF(number);
    }
    else {
        number = PyObject_CallMethodNoArgs(sock, str_fileno);
    }
    if (number == NULL) {
        return -1;
    }
    int status = fd_of(number, fd);
    Py_DECREF(number);
    return status;
}

/* The loop of ByteStream.read from `wait` on: wait if `wait`, then receive, until bytes
 * (or b'' at the end) come. PYGEN_NEXT with the future to yield, PYGEN_RETURN with the
 * bytes, or PYGEN_ERROR with an exception set. */
static PySendResult
readop_run(ReadOp *op, int wait, PyObject **result)
{
    PyObject *io = op->io;
    for (;;) {
        if (wait) {
            PyObject *fut;
            int reading = slot_true(io, S_READING);
            if (reading < 0) {
                return PYGEN_ERROR;
            }
            PyObject *reader = SLOT(io, S_READER), *deadline = SLOT(io, S_DEADLINE);
            PyObject *loop = SLOT(io, S_LOOP);
            if (reader == NULL || deadline == NULL || loop == NULL) {
                return PYGEN_ERROR;
            }
            if (reading && reader == Py_None && deadline == Py_None) {
                fut = PyObject_CallMethodNoArgs(loop, str_create_future);
                if (fut == NULL) {
                    return PYGEN_ERROR;
                }
                slot_set(io, S_READER, fut);
            }
            else if ((fut = PyObject_CallMethodNoArgs(io, str_wait_for_read)) == NULL) {
                return PYGEN_ERROR;
            }
            /* What `await fut` does: a task takes only a future marked so. */
            if (PyObject_SetAttr(fut, str_blocking, Py_True) < 0) {
                PyObject *type, *value, *tb;
                PyErr_Fetch(&type, &value, &tb);
                PyObject *res = PyObject_CallMethodOneArg(io, str_forget_reader, fut);
                Py_XDECREF(res);
                Py_DECREF(fut);
                PyErr_Restore(type, value, tb);
                return PYGEN_ERROR;
            }
            Py_INCREF(fut);
            op->fut = fut;
            *result = fut;
            return PYGEN_NEXT;
        }
        /* Also after a wake-up: a callback may have closed or detached it meanwhile. */
        int flag = slot_true(io, S_CLOSED);
        if (flag != 0) {
            if (flag > 0) {
                PyErr_SetNone(closed_error);
            }
            return PYGEN_ERROR;
        }
        if ((flag = slot_true(io, S_READ_SHUT)) != 0) {
            if (flag < 0) {
                return PYGEN_ERROR;
            }
            Py_INCREF(empty_bytes);
            *result = empty_bytes;
            return PYGEN_RETURN;
        }
        int fd, stream = slot_true(io, S_IS_STREAM); /* (no Python code after the recv) */
        if (stream < 0 || live_fd(io, &fd) < 0) {
            return PYGEN_ERROR;
        }
        ssize_t n = recv_once(fd, op->size);
        if (n == -1) {
            return PYGEN_ERROR;
        }
        if (n == -2) {
            wait = 1;
            continue;
        }
        PyObject *data = PyBytes_FromStringAndSize(recv_buffer, n);
        if (data == NULL) {
            return PYGEN_ERROR;
        }
        slot_set(io, S_DRAINED, n < op->size && stream ? Py_True : Py_False);
        *result = data;
        return PYGEN_RETURN;
    }
}

/* The exception that is set replaces the normalized (type, value, tb), which becomes its
 * __context__, as when an `except` block raises: all three references are consumed. */
static void
chain_onto(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *t2, *v2, *tb2;
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    if (v2 != NULL && value != NULL && v2 != value) {
        PyException_SetContext(v2, value); /* steals value */
        value = NULL;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Restore(t2, v2, tb2);
}

/* The wait on `fut` (taken from op->fut, a reference this consumes) ended with the
 * exception that is set: what the Python body's `except BaseException` does. The future
 * is forgotten; a RuntimeError while the running loop is not the future's (a task of
 * another loop refused it, or no loop runs here) moves the socket to the running loop and
 * waits again; anything else is raised again. */
static PySendResult
readop_failed(ReadOp *op, PyObject *fut, PyObject **result)
{
    PyObject *io = op->io;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb); /* type(exc), as the body checks it */
    PyObject *res = PyObject_CallMethodOneArg(io, str_forget_reader, fut);
    if (res == NULL) {
        goto replaced;
    }
    Py_DECREF(res);
    if (type == PyExc_RuntimeError) {
        PyObject *loop = PyObject_CallMethodNoArgs(fut, str_get_loop);
        if (loop == NULL) {
            goto replaced;
        }
        PyObject *running = PyObject_CallNoArgs(running_loop);
        Py_DECREF(loop); /* (only compared: the future keeps it alive) */
        if (running == NULL) {
            goto replaced;
        }
        Py_DECREF(running);
        if (running != loop) {
            Py_DECREF(fut);
            res = PyObject_CallMethodNoArgs(io, str_move_here);
            if (res == NULL) { /* no loop runs here: its error, after the refusal */
                chain_onto(type, value, tb);
                return PYGEN_ERROR;
            }
            Py_DECREF(res);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            return readop_run(op, 1, result);
        }
    }
    Py_DECREF(fut);
    PyErr_Restore(type, value, tb);
    return PYGEN_ERROR;
replaced: /* the cleanup itself failed: its exception wins, as in Python */
    Py_DECREF(fut);
    chain_onto(type, value, tb);
    return PYGEN_ERROR;
}

static PySendResult
readop_finish(ReadOp *op, PySendResult status)
{
    if (status != PYGEN_NEXT) {
        op->done = 1;
    }
    return status;
}

/* Resumed while `fut` (op->fut) is still pending, which a task never does (the
 * facade's main-script driver may, when the loop stops): what `await fut` does then,
 * as asyncio's future iterator: yield it again if whoever took it cleared its flag,
 * else RuntimeError. */
static PySendResult
readop_not_done(ReadOp *op, PyObject **result)
{
    PyObject *fut = op->fut;
    PyObject *flag = PyObject_GetAttr(fut, str_blocking);
    if (flag == NULL) {
        return PYGEN_ERROR;
    }
    int blocking = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    if (blocking < 0) {
        return PYGEN_ERROR;
    }
    if (blocking) {
        PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
        return PYGEN_ERROR;
    }
    if (PyObject_SetAttr(fut, str_blocking, Py_True) < 0) {
        return PYGEN_ERROR;
    }
    Py_INCREF(fut);
    *result = fut;
    return PYGEN_NEXT;
}

/* read's `if self._pending: data = self._take_pending(size)`: PYGEN_RETURN with the
 * bytes it kept, PYGEN_ERROR, or PYGEN_NEXT when there were none (go on reading). */
static PySendResult
readop_kept(ReadOp *op, PyObject **result)
{
    PyObject *stream = op->stream;
    op->stream = NULL; /* (once) */
    PyObject *kept = PyObject_GetAttr(stream, str_pending);
    int some = kept == NULL ? -1 : kept != Py_None && PyObject_IsTrue(kept);
    Py_XDECREF(kept);
    PyObject *data = NULL;
    if (some > 0) {
        PyObject *size = PyLong_FromSsize_t(op->size);
        data = size == NULL ? NULL : PyObject_CallMethodOneArg(stream, str_take_pending, size);
        Py_XDECREF(size);
        if (data == NULL) {
            some = -1;
        }
        else if (data == Py_None) { /* a copy in another thread took them meanwhile */
            Py_DECREF(data);
            some = 0;
        }
    }
    Py_DECREF(stream);
    if (some < 0) {
        return PYGEN_ERROR;
    }
    if (some == 0) {
        return PYGEN_NEXT;
    }
    *result = data;
    return PYGEN_RETURN;
}

/* The first step of an op: 0, or -1 with TypeError for a value sent in, as a
 * coroutine that has not started refuses one. */
static int
op_start(int *started, int *done, PyObject *arg)
{
    if (*started) {
        return 0;
    }
    *started = 1;
    if (arg != Py_None) {
        *done = 1;
        PyErr_SetString(PyExc_TypeError,
                        "can't send non-None value to a just-started coroutine");
        return -1;
    }
    return 0;
}

/* When an op that was never stepped, thrown into or closed is dropped: the warning a
 * coroutine gives (with the exception that is set kept as it is). */
static void
op_never_awaited(PyObject *op, int started, const char *qualname)
{
    if (started) {
        return;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "coroutine '%s' was never awaited",
                         qualname) < 0) {
        PyErr_WriteUnraisable(op);
    }
    PyErr_Restore(type, value, tb);
}

static PySendResult
readop_am_send(ReadOp *op, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (op->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited read");
        return PYGEN_ERROR;
    }
    if (op_start(&op->started, &op->done, arg) < 0) {
        return PYGEN_ERROR;
    }
    PyObject *fut = op->fut;
    if (fut != NULL) { /* resumed: the wait is over; `await fut` raises what it holds */
        PyObject *res = PyObject_CallMethodNoArgs(fut, str_result);
        if (res == NULL) {
            /* Not done yet (InvalidStateError), or it failed: which one, done() says. */
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyObject *done = PyObject_CallMethodNoArgs(fut, str_done);
            int finished = done == NULL ? -1 : PyObject_IsTrue(done);
            Py_XDECREF(done);
            if (finished == 0) {
                Py_XDECREF(type);
                Py_XDECREF(value);
                Py_XDECREF(tb);
                PySendResult status = readop_not_done(op, result);
                if (status == PYGEN_NEXT) {
                    return status;
                }
            }
            else if (finished > 0) {
                PyErr_Restore(type, value, tb);
            }
            else {
                chain_onto(type, value, tb);
            }
            op->fut = NULL;
            return readop_finish(op, readop_failed(op, fut, result));
        }
        op->fut = NULL;
        Py_DECREF(res);
        Py_DECREF(fut);
        return readop_finish(op, readop_run(op, 0, result));
    }
    if (op->stream != NULL) { /* first, as read's body: bytes the stream kept, if any */
        PySendResult status = readop_kept(op, result);
        if (status != PYGEN_NEXT) {
            return readop_finish(op, status);
        }
    }
    /* The first step. Right after a short receive on a stream the kernel's buffer was
     * empty a moment ago: wait first (the level-triggered registration reports at once
     * if data came meanwhile); with a deadline, data already there must win over an
     * expired deadline, so poll(2) decides. */
    int wait = slot_true(op->io, S_DRAINED);
    if (wait > 0) {
        PyObject *deadline = SLOT(op->io, S_DEADLINE);
        if (deadline == NULL) {
            return readop_finish(op, PYGEN_ERROR);
        }
        if (deadline != Py_None) {
            PyObject *ready = PyObject_CallMethodNoArgs(op->io, str_poll_readable);
            if (ready == NULL) {
                return readop_finish(op, PYGEN_ERROR);
            }
            int readable = PyObject_IsTrue(ready);
            Py_DECREF(ready);
            wait = readable < 0 ? -1 : !readable;
        }
    }
    if (wait < 0) {
        return readop_finish(op, PYGEN_ERROR);
    }
    return readop_finish(op, readop_run(op, wait, result));
}

/* PYGEN_* to what a Python-level send/next/throw returns. */
static PyObject *
readop_result(PySendResult status, PyObject *result)
{
    if (status == PYGEN_NEXT) {
        return result;
    }
    if (status == PYGEN_RETURN) { /* StopIteration(result), whatever result is */
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
        Py_DECREF(result);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    return NULL;
}

/* send(arg) of an op (ReadOp, WriteOp): its am_send, as a Python-level call. */
static PyObject *
op_send(PyObject *op, PyObject *arg)
{
    PyObject *result = NULL;
    PySendResult status = Py_TYPE(op)->tp_as_async->am_send(op, arg, &result);
    return readop_result(status, result); /* (after the step has set `result`) */
}

static PyObject *
op_iternext(PyObject *op)
{
    return op_send(op, Py_None);
}

/* Sets the exception that throw(type[, value[, tb]]) stands for, as a generator's throw()
 * does: -1 always (an invalid call sets TypeError instead). */
static int
set_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected at most 3 arguments, got %zd", nargs);
        return -1;
    }
    PyObject *type = args[0], *value = nargs > 1 ? args[1] : Py_None;
    PyObject *tb = nargs > 2 ? args[2] : Py_None;
    if (tb == Py_None) {
        tb = NULL;
    }
    else if (!PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback");
        return -1;
    }
    if (PyExceptionClass_Check(type)) {
        Py_INCREF(type);
        Py_INCREF(value);
        Py_XINCREF(tb);
        /* Before PyErr_Restore, which on 3.12+ would wrap a value that is an instance
         * of a subclass of `type` instead of taking it. */
        PyErr_NormalizeException(&type, &value, &tb);
        PyErr_Restore(type, value, tb);
        return -1;
    }
    if (!PyExceptionInstance_Check(type)) {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, "
                     "not %s", Py_TYPE(type)->tp_name);
        return -1;
    }
    if (value != Py_None) {
        PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
        return -1;
    }
    value = type;
    type = (PyObject *)Py_TYPE(value);
    if (tb == NULL) {
        tb = PyException_GetTraceback(value); /* new reference, or NULL */
    }
    else {
        Py_INCREF(tb);
    }
    Py_INCREF(type);
    Py_INCREF(value);
    PyErr_Restore(type, value, tb);
    return -1;
}

static PyObject *
readop_throw(ReadOp *op, PyObject *const *args, Py_ssize_t nargs)
{
    op->started = 1;
    set_thrown(args, nargs); /* (what it sets, a TypeError too, ends the wait) */
    if (op->fut == NULL || op->done) {
        op->done = 1;
        return NULL;
    }
    PyObject *fut = op->fut, *result = NULL;
    op->fut = NULL;
    PySendResult status = readop_finish(op, readop_failed(op, fut, &result));
    return readop_result(status, result);
}

/* Drops the wait, as GeneratorExit at `await fut` would: 0, or -1 with an exception. */
static int
readop_forget(ReadOp *op)
{
    PyObject *fut = op->fut;
    op->done = 1;
    op->started = 1;
    if (fut == NULL) {
        return 0;
    }
    op->fut = NULL;
    PyObject *res = PyObject_CallMethodOneArg(op->io, str_forget_reader, fut);
    Py_DECREF(fut);
    if (res == NULL) { /* its error, after the GeneratorExit that `close` stands for */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *exit = PyObject_CallNoArgs(PyExc_GeneratorExit);
        PyErr_Restore(type, value, tb);
        if (exit != NULL) {
            Py_INCREF(PyExc_GeneratorExit);
            chain_onto(PyExc_GeneratorExit, exit, NULL);
        }
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *
readop_close(ReadOp *op, PyObject *Py_UNUSED(ignored))
{
    if (readop_forget(op) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Dropped while waiting (never closed, e.g. its coroutine was collected): forget the
 * wait, or the next read would find the socket busy. */
static void
readop_finalize(ReadOp *op)
{
    op_never_awaited((PyObject *)op, op->started || op->done, "ByteStream.read");
    if (op->fut == NULL) {
        return;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (readop_forget(op) < 0) {
        PyErr_WriteUnraisable((PyObject *)op);
    }
    PyErr_Restore(type, value, tb);
}

static PyObject *
readop_await(PyObject *op)
{
    Py_INCREF(op);
    return op;
}

static int
readop_traverse(ReadOp *op, visitproc visit, void *arg)
{
    Py_VISIT(op->io);
    Py_VISIT(op->stream);
    Py_VISIT(op->fut);
    return 0;
}

static int
readop_clear(ReadOp *op)
{
    op->done = 1; /* (io is gone: never step again) */
    Py_CLEAR(op->io);
    Py_CLEAR(op->stream);
    Py_CLEAR(op->fut);
    return 0;
}

/* tp_dealloc of an op (ReadOp, WriteOp): finalize (a warning, a wait forgotten), clear. */
static void
op_dealloc(PyObject *op)
{
    if (PyObject_CallFinalizerFromDealloc(op) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(op);
    Py_TYPE(op)->tp_clear(op);
    PyObject_GC_Del(op);
}

/* An op's __name__ or __qualname__: the text its getset entry holds (task reprs). */
static PyObject *
op_name(PyObject *Py_UNUSED(op), void *text)
{
    return PyUnicode_FromString((const char *)text);
}

static PyGetSetDef readop_getset[] = {
    {"__name__", op_name, NULL, NULL, "read"},
    {"__qualname__", op_name, NULL, NULL, "ByteStream.read"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef readop_methods[] = {
    {"send", (PyCFunction)op_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))readop_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)readop_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods readop_as_async = {
    .am_await = readop_await,
    .am_send = (sendfunc)readop_am_send,
};

static PyTypeObject ReadOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netcore._speedups.ReadOp",
    .tp_doc = "What read_op() returns: the rest of a ByteStream.read, to await once.",
    .tp_basicsize = sizeof(ReadOp),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
#ifdef Py_TPFLAGS_HAVE_AM_SEND
                | Py_TPFLAGS_HAVE_AM_SEND
#endif
    ,
    .tp_as_async = &readop_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = op_iternext,
    .tp_methods = readop_methods,
    .tp_getset = readop_getset,
    .tp_traverse = (traverseproc)readop_traverse,
    .tp_clear = (inquiry)readop_clear,
    .tp_dealloc = op_dealloc,
    .tp_finalize = (destructor)readop_finalize,
};

PyDoc_STRVAR(read_op_doc,
"read_op(io, size, /)\n--\n\n"
"The rest of ByteStream.read(size) on the SocketIO `io`, as an awaitable, for a size of\n"
"1..RECV_MAX (bind() first).");

static PyObject *
speedups_read_op(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("read_op", nargs, 2) < 0) {
        return NULL;
    }
    if (socketio_type == NULL || !PyObject_TypeCheck(args[0], socketio_type)) {
        PyErr_SetString(PyExc_TypeError, "read_op() needs a SocketIO (after bind())");
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 1 || size > RECV_MAX) {
        PyErr_Format(PyExc_ValueError, "read_op() size must be 1..%d, got %zd", RECV_MAX, size);
        return NULL;
    }
    ReadOp *op = PyObject_GC_New(ReadOp, &ReadOp_Type);
    if (op == NULL) {
        return NULL;
    }
    Py_INCREF(args[0]);
    op->io = args[0];
    op->stream = NULL;
    op->fut = NULL;
    op->size = size;
    op->done = 0;
    op->started = 0;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* -- read_method, write_method: ByteStream's read and write without coroutine frames -- */

/* A coroutine frame costs about 2,000 instructions to make, step and drop: as much as the
 * rest of a server's read. read_method(read) is a method that answers a plain call,
 * stream.read() or stream.read(n) with an int n in 1..RECV_MAX, with the ReadOp that read's
 * body would await (which also takes the stream's kept bytes first, at its first step, as
 * the body does), and hands every other call to `read` itself, the coroutine function.
 * Nothing happens before it is awaited, as for a coroutine. It has a __dict__, where
 * netcore puts read's __name__, __doc__, __code__ and the rest (functools.update_wrapper
 * and __wrapped__), so inspect sees a coroutine function with read's signature. */

typedef struct {
    PyObject_HEAD
    PyObject *fallback;      /* the function (a coroutine function but for _write_now) */
    PyObject *dict;          /* __dict__ */
    PyObject *weakrefs;
    Py_ssize_t default_size; /* read: of fallback.__defaults__ */
    vectorcallfunc vectorcall;
} FastMethod;

static PyTypeObject FastMethod_Type;

/* stream._io if it is a SocketIO (a new reference), else NULL, with no exception set:
 * the method then hands the call to its Python function, which says what is wrong. */
static PyObject *
stream_io(PyObject *stream)
{
    PyObject *io = PyObject_GetAttr(stream, str_io);
    if (io == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
    }
    else if (!PyObject_TypeCheck(io, socketio_type)) {
        Py_CLEAR(io);
    }
    return io;
}

static PyObject *
readmethod_vectorcall(FastMethod *m, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && (nargs == 1 || nargs == 2) && socketio_type != NULL) {
        Py_ssize_t size = m->default_size;
        if (nargs == 2) {
            size = PyLong_CheckExact(args[1]) ? PyLong_AsSsize_t(args[1]) : 0;
            if (size == -1 && PyErr_Occurred()) {
                PyErr_Clear(); /* (huge: the coroutine says what it makes of it) */
                size = 0;
            }
        }
        if (size >= 1 && size <= RECV_MAX) {
            PyObject *io = stream_io(args[0]);
            if (io != NULL) {
                ReadOp *op = PyObject_GC_New(ReadOp, &ReadOp_Type);
                if (op == NULL) {
                    Py_DECREF(io);
                    return NULL;
                }
                op->io = io;
                Py_INCREF(args[0]);
                op->stream = args[0];
                op->fut = NULL;
                op->size = size;
                op->done = 0;
                op->started = 0;
                PyObject_GC_Track(op);
                return (PyObject *)op;
            }
        }
    }
    return PyObject_Vectorcall(m->fallback, args, nargsf, kwnames);
}

static PyObject *
fastmethod_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static int
fastmethod_traverse(FastMethod *m, visitproc visit, void *arg)
{
    Py_VISIT(m->fallback);
    Py_VISIT(m->dict);
    return 0;
}

static int
fastmethod_clear(FastMethod *m)
{
    Py_CLEAR(m->fallback);
    Py_CLEAR(m->dict);
    return 0;
}

static void
fastmethod_dealloc(FastMethod *m)
{
    PyObject_GC_UnTrack(m);
    if (m->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)m);
    }
    fastmethod_clear(m);
    PyObject_GC_Del(m);
}

/* Pickled and copied by name, as a function is: the class attribute is this object. */
static PyObject *
fastmethod_reduce(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    return PyObject_GetAttrString(m, "__qualname__");
}

static PyMethodDef fastmethod_methods[] = {
    {"__reduce__", fastmethod_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyObject *
fastmethod_repr(FastMethod *m)
{
    return PyUnicode_FromFormat("<C speedups of %R>", m->fallback);
}

static PyGetSetDef fastmethod_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastMethod_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netcore._speedups.FastMethod",
    .tp_doc = "What read_method() and the others return: a method answering plain calls in C.",
    .tp_basicsize = sizeof(FastMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_METHOD_DESCRIPTOR |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(FastMethod, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = fastmethod_get,
    .tp_repr = (reprfunc)fastmethod_repr,
    .tp_dictoffset = offsetof(FastMethod, dict),
    .tp_weaklistoffset = offsetof(FastMethod, weakrefs),
    .tp_methods = fastmethod_methods,
    .tp_getset = fastmethod_getset,
    .tp_traverse = (traverseproc)fastmethod_traverse,
    .tp_clear = (inquiry)fastmethod_clear,
    .tp_dealloc = (destructor)fastmethod_dealloc,
};

/* A FastMethod over the Python function `fn`, answering plain calls with `call`. */
static PyObject *
new_method(PyObject *fn, vectorcallfunc call, Py_ssize_t default_size)
{
    FastMethod *m = PyObject_GC_New(FastMethod, &FastMethod_Type);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(fn);
    m->fallback = fn;
    m->dict = NULL;
    m->weakrefs = NULL;
    m->default_size = default_size;
    m->vectorcall = call;
    PyObject_GC_Track(m);
    return (PyObject *)m;
}

PyDoc_STRVAR(read_method_doc,
"read_method(read, /)\n--\n\n"
"ByteStream.read (the coroutine function `read`, whose one default is its size) as a\n"
"method that answers plain calls with a ReadOp (bind() first) and hands others to read.");

static PyObject *
speedups_read_method(PyObject *Py_UNUSED(module), PyObject *read)
{
    PyObject *defaults = PyObject_GetAttrString(read, "__defaults__");
    if (defaults == NULL) {
        return NULL;
    }
    Py_ssize_t size = -1;
    if (PyTuple_Check(defaults) && PyTuple_GET_SIZE(defaults) == 1 &&
        PyLong_CheckExact(PyTuple_GET_ITEM(defaults, 0))) {
        size = PyLong_AsSsize_t(PyTuple_GET_ITEM(defaults, 0));
    }
    Py_DECREF(defaults);
    if (size < 1 || size > RECV_MAX) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError,
                            "read_method() needs a function with one default, a size");
        }
        return NULL;
    }
    return new_method(read, (vectorcallfunc)readmethod_vectorcall, size);
}

/* One send of all of `data` (bytes) on `fd`, never waiting, retried on EINTR: the count
 * sent, -2 when the kernel's buffer is full, or -1 with an exception set. */
static Py_ssize_t
send_bytes(int fd, PyObject *data)
{
    for (;;) {
        ssize_t n = send(fd, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
                         MSG_DONTWAIT);
        if (n >= 0) {
            return n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -2;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

/* The send of write_bytes/_write_now on an open `io`: the count (-1: the buffer was full,
 * as fd_send says it), or -2 with an exception set (ClosedError when `io` is closed). */
static Py_ssize_t
io_send(PyObject *io, PyObject *data)
{
    int fd, closed = slot_true(io, S_CLOSED);
    if (closed > 0) {
        PyErr_SetNone(closed_error);
    }
    if (closed != 0 || live_fd(io, &fd) < 0) {
        return -2;
    }
    Py_ssize_t n = send_bytes(fd, data);
    return n == -1 ? -2 : n == -2 ? -1 : n;
}

/* _write_now(data) for bytes: (sent, total) as SocketIO.send_now gives them. */
static PyObject *
writenow_vectorcall(FastMethod *m, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames == NULL && PyVectorcall_NARGS(nargsf) == 2 && PyBytes_CheckExact(args[1]) &&
        socketio_type != NULL) {
        PyObject *io = stream_io(args[0]);
        if (io != NULL) {
            Py_ssize_t sent = io_send(io, args[1]);
            Py_DECREF(io);
            return sent == -2 ? NULL : Py_BuildValue("(nn)", sent, PyBytes_GET_SIZE(args[1]));
        }
    }
    return PyObject_Vectorcall(m->fallback, args, nargsf, kwnames);
}

/* WriteOp: what write_bytes(data) does for bytes, as one awaitable. The first step sends;
 * if the kernel took less than all, it awaits the stream's _write_rest(data, sent)
 * coroutine (passing on what is sent and thrown in, as `await` does), then returns the
 * byte count. */
typedef struct {
    PyObject_HEAD
    PyObject *stream;
    PyObject *io;
    PyObject *data;  /* bytes */
    PyObject *inner; /* _write_rest's coroutine while it runs, or NULL */
    Py_ssize_t total;
    int done; /* (then the references above are dropped, as a finished coroutine's frame) */
    int started;
} WriteOp;

static PyTypeObject WriteOp_Type;
static int writeop_clear(WriteOp *op);

static PySendResult
writeop_delegate(WriteOp *op, PyObject *arg, PyObject **result)
{
    PySendResult status = PyIter_Send(op->inner, arg, result);
    if (status == PYGEN_NEXT) {
        return status;
    }
    writeop_clear(op);
    if (status == PYGEN_RETURN) {
        Py_DECREF(*result);
        *result = PyLong_FromSsize_t(op->total);
        return *result == NULL ? PYGEN_ERROR : PYGEN_RETURN;
    }
    return status;
}

static PySendResult
writeop_am_send(WriteOp *op, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (op->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited write");
        return PYGEN_ERROR;
    }
    if (op_start(&op->started, &op->done, arg) < 0) {
        return PYGEN_ERROR;
    }
    if (op->inner != NULL) {
        return writeop_delegate(op, arg, result);
    }
    Py_ssize_t total = op->total;
    Py_ssize_t sent = io_send(op->io, op->data);
    if (sent == total || sent == -2) {
        writeop_clear(op);
        if (sent == -2) {
            return PYGEN_ERROR;
        }
        *result = PyLong_FromSsize_t(total);
        return *result == NULL ? PYGEN_ERROR : PYGEN_RETURN;
    }
    PyObject *count = PyLong_FromSsize_t(sent);
    if (count != NULL) {
        op->inner = PyObject_CallMethod(op->stream, "_write_rest", "OO", op->data, count);
        Py_DECREF(count);
    }
    if (op->inner == NULL) {
        writeop_clear(op);
        return PYGEN_ERROR;
    }
    return writeop_delegate(op, Py_None, result);
}

static PyObject *
writeop_throw(WriteOp *op, PyObject *const *args, Py_ssize_t nargs)
{
    op->started = 1;
    if (op->inner == NULL || op->done) {
        writeop_clear(op);
        set_thrown(args, nargs);
        return NULL;
    }
    PyObject *throw = PyObject_GetAttrString(op->inner, "throw");
    PyObject *res = throw == NULL ? NULL : PyObject_Vectorcall(throw, args, nargs, NULL);
    Py_XDECREF(throw);
    if (res != NULL) {
        return res; /* it waits again */
    }
    writeop_clear(op);
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) { /* it finished: all was sent */
        PyErr_Clear();
        PyObject *total = PyLong_FromSsize_t(op->total);
        return total == NULL ? NULL : readop_result(PYGEN_RETURN, total);
    }
    return NULL;
}

static PyObject *
writeop_close(WriteOp *op, PyObject *Py_UNUSED(ignored))
{
    op->started = 1;
    PyObject *inner = op->inner;
    op->inner = NULL;
    writeop_clear(op);
    if (inner == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *res = PyObject_CallMethod(inner, "close", NULL);
    Py_DECREF(inner);
    return res;
}

static int
writeop_traverse(WriteOp *op, visitproc visit, void *arg)
{
    Py_VISIT(op->stream);
    Py_VISIT(op->io);
    Py_VISIT(op->data);
    Py_VISIT(op->inner);
    return 0;
}

static int
writeop_clear(WriteOp *op)
{
    op->done = 1;
    Py_CLEAR(op->stream);
    Py_CLEAR(op->io);
    Py_CLEAR(op->data);
    Py_CLEAR(op->inner);
    return 0;
}

static void
writeop_finalize(WriteOp *op)
{
    op_never_awaited((PyObject *)op, op->started || op->done, "ByteStream.write_bytes");
}

static PyGetSetDef writeop_getset[] = {
    {"__name__", op_name, NULL, NULL, "write_bytes"},
    {"__qualname__", op_name, NULL, NULL, "ByteStream.write_bytes"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef writeop_methods[] = {
    {"send", (PyCFunction)op_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))writeop_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)writeop_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods writeop_as_async = {
    .am_await = readop_await,
    .am_send = (sendfunc)writeop_am_send,
};

static PyTypeObject WriteOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netcore._speedups.WriteOp",
    .tp_doc = "What write_method() answers: a ByteStream.write_bytes of bytes, to await once.",
    .tp_basicsize = sizeof(WriteOp),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
#ifdef Py_TPFLAGS_HAVE_AM_SEND
                | Py_TPFLAGS_HAVE_AM_SEND
#endif
    ,
    .tp_as_async = &writeop_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = op_iternext,
    .tp_methods = writeop_methods,
    .tp_getset = writeop_getset,
    .tp_finalize = (destructor)writeop_finalize,
    .tp_traverse = (traverseproc)writeop_traverse,
    .tp_clear = (inquiry)writeop_clear,
    .tp_dealloc = op_dealloc,
};

/* write_bytes(data) for bytes: a WriteOp (nothing is sent before it is awaited). */
static PyObject *
writemethod_vectorcall(FastMethod *m, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames == NULL && PyVectorcall_NARGS(nargsf) == 2 && PyBytes_CheckExact(args[1]) &&
        socketio_type != NULL) {
        PyObject *io = stream_io(args[0]);
        if (io != NULL) {
            WriteOp *op = PyObject_GC_New(WriteOp, &WriteOp_Type);
            if (op == NULL) {
                Py_DECREF(io);
                return NULL;
            }
            op->io = io;
            Py_INCREF(args[0]);
            op->stream = args[0];
            Py_INCREF(args[1]);
            op->data = args[1];
            op->total = PyBytes_GET_SIZE(args[1]);
            op->inner = NULL;
            op->done = 0;
            op->started = 0;
            PyObject_GC_Track(op);
            return (PyObject *)op;
        }
    }
    return PyObject_Vectorcall(m->fallback, args, nargsf, kwnames);
}

PyDoc_STRVAR(write_method_doc,
"write_method(write_bytes, /)\n--\n\n"
"ByteStream.write_bytes as a method that answers a call with bytes with a WriteOp\n"
"(bind() first) and hands others to the coroutine function write_bytes.");

static PyObject *
speedups_write_method(PyObject *Py_UNUSED(module), PyObject *fn)
{
    return new_method(fn, (vectorcallfunc)writemethod_vectorcall, 0);
}

PyDoc_STRVAR(write_now_method_doc,
"write_now_method(write_now, /)\n--\n\n"
"ByteStream._write_now as a method that sends bytes in C, (sent, total) as\n"
"SocketIO.send_now gives them, and hands other calls to the function write_now.");

static PyObject *
speedups_write_now_method(PyObject *Py_UNUSED(module), PyObject *fn)
{
    return new_method(fn, (vectorcallfunc)writenow_vectorcall, 0);
}

PyDoc_STRVAR(step_doc,
"step(coro, /)\n--\n\n"
"Send None into a coroutine: (False, what it yielded), or (True, what it returned).\n"
"coro.send(None) with no StopIteration to raise and catch (the facade's wait()).");

static PyObject *
speedups_step(PyObject *Py_UNUSED(module), PyObject *coro)
{
    PyObject *result;
    PySendResult status = PyIter_Send(coro, Py_None, &result);
    if (status == PYGEN_ERROR) {
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, Py_NewRef(status == PYGEN_RETURN ? Py_True : Py_False));
    PyTuple_SET_ITEM(pair, 1, result);
    return pair;
}

static PyMethodDef speedups_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))speedups_recv, METH_FASTCALL, recv_doc},
    {"send", (PyCFunction)(void (*)(void))speedups_send, METH_FASTCALL, send_doc},
    {"bind", (PyCFunction)(void (*)(void))speedups_bind, METH_FASTCALL, bind_doc},
    {"read_op", (PyCFunction)(void (*)(void))speedups_read_op, METH_FASTCALL, read_op_doc},
    {"step", speedups_step, METH_O, step_doc},
    {"read_method", speedups_read_method, METH_O, read_method_doc},
    {"write_method", speedups_write_method, METH_O, write_method_doc},
    {"write_now_method", speedups_write_now_method, METH_O, write_now_method_doc},
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    {"accept", speedups_accept, METH_O, accept_doc},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "netcore._speedups",
    .m_doc = "recv(2), send(2), accept4(2), ByteStream.read's step, a coroutine step (optional).",
    .m_size = -1, /* one static buffer: not for isolated subinterpreters */
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **where;
        const char *text;
    } names[] = {
        {&str_create_future, "create_future"}, {&str_wait_for_read, "wait_for_read"},
        {&str_forget_reader, "forget_reader"}, {&str_move_here, "move_here"},
        {&str_poll_readable, "poll_readable"}, {&str_fileno, "fileno"},
        {&str_result, "result"},               {&str_done, "done"},
        {&str_get_loop, "get_loop"},          {&str_io, "_io"},
        {&str_pending, "_pending"},           {&str_take_pending, "_take_pending"},
        {&str_blocking, "_asyncio_future_blocking"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].where == NULL &&
            (*names[i].where = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return NULL;
        }
    }
    if (empty_bytes == NULL && (empty_bytes = PyBytes_FromStringAndSize(NULL, 0)) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&ReadOp_Type) < 0 || PyType_Ready(&FastMethod_Type) < 0 ||
        PyType_Ready(&WriteOp_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    /* VERSION: what netcore/_engine.py checks, so that a stale in-place build is not
     * used; raise it with every change of behaviour here. */
    if (module != NULL && (PyModule_AddIntConstant(module, "RECV_MAX", RECV_MAX) < 0 ||
                           PyModule_AddIntConstant(module, "VERSION", 6) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
