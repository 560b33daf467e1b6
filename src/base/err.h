/* Error codes for every QUIC-S module: 0 is success, failures are negative QS_E* values
 * from this single enum, turned into text by qs_strerror(). errno is mapped at the
 * adapter edge with qs_err_from_errno(). */
#ifndef QS_BASE_ERR_H
#define QS_BASE_ERR_H

enum qs_err {
	QS_OK = 0,
	QS_ENOMEM = -1,      /* allocation failed */
	QS_EINVAL = -2,      /* invalid argument (a caller bug or bad user input) */
	QS_E2BIG = -3,       /* a size limit was exceeded */
	QS_EPROTO = -4,      /* malformed data from a peer or a file */
	QS_EIO = -5,         /* I/O error */
	QS_ENOENT = -6,      /* no such file or entry */
	QS_EEXIST = -7,      /* already exists */
	QS_EAGAIN = -8,      /* try again later (would block, buffer full) */
	QS_ECANCELED = -9,   /* operation canceled */
	QS_ETIMEDOUT = -10,  /* timed out */
	QS_ECONN = -11,      /* connection failed or was closed */
	QS_ETLS = -12,       /* TLS handshake or crypto failure */
	QS_ECERT = -13,      /* server certificate does not match the pinned fingerprint */
	QS_ELIMIT = -14,     /* a peer exceeded a protocol limit */
	QS_EACCES = -15,     /* permission denied */
	QS_ECONFLICT = -16,  /* version conflict */
	QS_ESTATE = -17,     /* operation not valid in the current state */
	QS_ENOSPC = -18,     /* no space left on device */
	QS_ECLOSED = -19,    /* the other side closed the stream */
	QS_EKIND = -20,      /* the tree forbids it: a path below a file, or a file over paths */
	QS_EADDRINUSE = -21, /* a port to listen on is taken */

	/* Path validation (base/path.h): one code per reason a path is refused. */
	QS_EPATH_EMPTY = -40,         /* the path is empty */
	QS_EPATH_TOO_LONG = -41,      /* longer than QS_PATH_MAX bytes */
	QS_EPATH_NAME_TOO_LONG = -42, /* a component longer than QS_PATH_NAME_MAX bytes */
	QS_EPATH_NUL = -43,           /* contains a NUL byte */
	QS_EPATH_UTF8 = -44,          /* not valid UTF-8 (includes overlongs and surrogates) */
	QS_EPATH_ABSOLUTE = -45,      /* starts with '/' or a drive letter */
	QS_EPATH_EMPTY_NAME = -46,    /* has an empty component ("a//b", trailing '/') */
	QS_EPATH_DOT = -47,           /* has a "." component */
	QS_EPATH_DOTDOT = -48,        /* has a ".." component */
	QS_EPATH_BACKSLASH = -49,     /* contains a backslash */
	QS_EPATH_CONTROL = -50,       /* contains a control character */
	QS_EPATH_OUTSIDE = -51,       /* a user-typed path resolves outside the root */

	QS_ERR_MIN = -52 /* one past the lowest code; keep last */
};

/* Returns a static, human-readable description of err (any int; unknown codes get a
 * generic text). Never returns NULL. */
const char *qs_strerror(int err);

/* Maps an errno value to the closest QS_E* code. */
int qs_err_from_errno(int errnum);

#endif
