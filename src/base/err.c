/* Error code descriptions and the errno mapping used at every adapter edge. */
#include "base/err.h"

#include <errno.h>

const char *qs_strerror(int err)
{
	switch (err) {
	case QS_OK: return "success";
	case QS_ENOMEM: return "out of memory";
	case QS_EINVAL: return "invalid argument";
	case QS_E2BIG: return "size limit exceeded";
	case QS_EPROTO: return "malformed data";
	case QS_EIO: return "input/output error";
	case QS_ENOENT: return "no such file or entry";
	case QS_EEXIST: return "already exists";
	case QS_EAGAIN: return "resource temporarily unavailable";
	case QS_ECANCELED: return "operation canceled";
	case QS_ETIMEDOUT: return "timed out";
	case QS_ECONN: return "connection failed or closed";
	case QS_ETLS: return "TLS failure";
	case QS_ECERT: return "server certificate does not match the pinned fingerprint";
	case QS_ELIMIT: return "peer exceeded a protocol limit";
	case QS_EACCES: return "permission denied";
	case QS_ECONFLICT: return "version conflict";
	case QS_ESTATE: return "invalid in the current state";
	case QS_ENOSPC: return "no space left on device";
	case QS_ECLOSED: return "closed by peer";
	case QS_EKIND:
		return "a file or symlink cannot hold paths below it (a path above is a file, or "
		       "the directory it would replace still holds paths)";
	case QS_EADDRINUSE: return "address already in use";
	case QS_EPATH_EMPTY: return "path is empty";
	case QS_EPATH_TOO_LONG: return "path is longer than 4096 bytes";
	case QS_EPATH_NAME_TOO_LONG: return "path component is longer than 255 bytes";
	case QS_EPATH_NUL: return "path contains a NUL byte";
	case QS_EPATH_UTF8: return "path is not valid UTF-8";
	case QS_EPATH_ABSOLUTE: return "path is absolute";
	case QS_EPATH_EMPTY_NAME: return "path has an empty component";
	case QS_EPATH_DOT: return "path has a '.' component";
	case QS_EPATH_DOTDOT: return "path has a '..' component";
	case QS_EPATH_BACKSLASH: return "path contains a backslash";
	case QS_EPATH_CONTROL: return "path contains a control character";
	case QS_EPATH_OUTSIDE: return "path lies outside the synced root";
	default: return "unknown error";
	}
}

int qs_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0: return QS_OK;
	case ENOMEM: return QS_ENOMEM;
	case EINVAL: return QS_EINVAL;
	case E2BIG:
	case EFBIG:
	case EMSGSIZE:
	case ENAMETOOLONG: return QS_E2BIG;
	case ENOENT:
	case ENOTDIR: return QS_ENOENT;
	case EEXIST:
	case ENOTEMPTY: return QS_EEXIST;
	case EAGAIN: return QS_EAGAIN;
	case ECANCELED: return QS_ECANCELED;
	case ETIMEDOUT: return QS_ETIMEDOUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EPIPE: return QS_ECONN;
	case EACCES:
	case EPERM:
	case EROFS: return QS_EACCES;
	case ENOSPC:
	case EDQUOT: return QS_ENOSPC;
	case EADDRINUSE: return QS_EADDRINUSE;
	default: return QS_EIO;
	}
}
