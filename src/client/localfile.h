/* A client's view of files in a synced root: safe opening beneath the root (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: nothing is ever read or written through a symlink or
 * outside the root), hashing a file into its manifest and content identity, reading one
 * chunk back for upload, and installing a received file atomically (temp file in the same
 * directory, verified, renamed over the target only if the target is still what the index
 * says). Blocking I/O: callers run these on the libuv thread pool. */
#ifndef QS_CLIENT_LOCALFILE_H
#define QS_CLIENT_LOCALFILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/fingerprint.h"
#include "core/content.h"
#include "core/manifest.h"

/* Temp files of the client start with this; the ignore rules never sync them. */
#define QS_LOCALFILE_TMP_PREFIX ".quics-tmp-"

/* What a path holds now. */
struct qs_localfile {
	enum qs_kind kind; /* QS_KIND_TOMBSTONE when the path does not exist */
	uint32_t mode;     /* permission bits */
	int64_t mtime_ns;
	uint64_t size;
	struct qs_fingerprint fp;
	struct qs_manifest manifest; /* files */
	char *target;                /* symlinks (heap) */
	struct qs_content content;
};

void qs_localfile_init(struct qs_localfile *f);
void qs_localfile_release(struct qs_localfile *f);

/* Opens root-relative path (validated) beneath root_fd without following any symlink.
 * Errors: QS_ENOENT, QS_EACCES (a symlink or an escape on the way), QS_EIO. */
int qs_localfile_open(int root_fd, const char *path, int flags, int *fd_out);

/* Stats and, for files, reads and chunks path into f (content identity included). If the
 * file changes while being read (fingerprint before != after) returns QS_EAGAIN. Errors:
 * QS_EAGAIN, QS_ENOENT is not an error (f->kind = tombstone), QS_EACCES, QS_EIO, QS_ENOMEM. */
int qs_localfile_hash(int root_fd, const char *path, struct qs_localfile *f);
/* The same, bounded: a regular file larger than max_bytes is QS_E2BIG without being read
 * (UINT64_MAX: no bound), one that grows past it while read QS_EAGAIN; and it gives up with
 * QS_ECANCELED as soon as *cancel is set (checked before each read; cancel NULL: never).
 * Thread-safe: touches only root_fd, path and f, so it runs on the thread pool (hashjob.c)
 * while the loop owns everything else. */
int qs_localfile_hash_bounded(int root_fd, const char *path, uint64_t max_bytes,
			      const atomic_bool *cancel, struct qs_localfile *f);

/* Reads the bytes [offset, offset+len) of path into buf and checks they hash to hash.
 * Errors: QS_ECONFLICT (the file changed: the bytes no longer match), QS_ENOENT, QS_EIO. */
int qs_localfile_read_chunk(int root_fd, const char *path, uint64_t offset, size_t len,
			    const uint8_t hash[32], uint8_t *buf);

/* Reads the bytes [offset, offset+len) of path into buf for an upload, without hashing them:
 * the file's stat fingerprint must equal *expect (taken when it was hashed) before and after
 * the read, so a file written meanwhile is refused, and the server checks every chunk's hash
 * anyway. Errors: QS_ECONFLICT (the file changed), QS_ENOENT, QS_EIO. */
int qs_localfile_read_upload(int root_fd, const char *path, uint64_t offset, size_t len,
			     const struct qs_fingerprint *expect, uint8_t *buf);

/* A file being received: chunks are appended in manifest order to a temp file in the
 * target's directory, then installed with qs_localfile_install. */
struct qs_localfile_writer {
	int dir_fd;
	int fd;
	char tmp_name[64];
	char *name; /* the target's last component */
	uint64_t written;
};

/* Creates the temp file for path (its directory must exist). Errors: QS_ENOENT, QS_EACCES,
 * QS_EIO. */
int qs_localfile_writer_open(struct qs_localfile_writer *w, int root_fd, const char *path);
int qs_localfile_writer_append(struct qs_localfile_writer *w, const void *p, size_t len);
/* Removes the temp file (an aborted receive). */
void qs_localfile_writer_abort(struct qs_localfile_writer *w);
/* Resumable downloads: the temp file of a download of path with content content_hash is
 * "<dir>/" QS_LOCALFILE_PART_PREFIX "<16 hex>-<16 hex>": the first half names the last
 * component (so the part files of one path can be found), the second the component and the
 * content, so a retry of the same version (after a lost connection or a killed daemon) finds
 * what the earlier attempt wrote. */
#define QS_LOCALFILE_PART_PREFIX QS_LOCALFILE_TMP_PREFIX "part-"
#define QS_LOCALFILE_PART_NAME_LEN (sizeof(QS_LOCALFILE_PART_PREFIX) - 1 + 33)

/* The start every part file of a file named name (a last component) has in common:
 * QS_LOCALFILE_PART_PREFIX "<16 hex>-". */
int qs_localfile_part_prefix(const char *name, char out[64]);

/* Opens or creates that temp file for appending; *have_bytes is what it already holds (the
 * caller verifies it with qs_localfile_writer_verify and cuts it with
 * qs_localfile_writer_truncate). Errors: as qs_localfile_writer_open. */
int qs_localfile_writer_resume(struct qs_localfile_writer *w, int root_fd, const char *path,
			       const uint8_t content_hash[QS_CONTENT_HASH_LEN],
			       uint64_t *have_bytes);
/* Checks that the temp file's bytes [offset, offset+len) hash to hash, reading them into buf
 * (len bytes). Errors: QS_ECONFLICT (short or different), QS_EIO. */
int qs_localfile_writer_verify(struct qs_localfile_writer *w, uint64_t offset, size_t len,
			       const uint8_t hash[32], uint8_t *buf);
/* Appends bytes [offset, offset+len) of path (the old version of a file being received) to
 * the temp file in the kernel (copy_file_range; pread/write through buf, len bytes, where the
 * file system cannot), without hashing them: path's stat fingerprint must equal *expect (the
 * index's, whose content the manifest describes) before and after the copy. Errors:
 * QS_ECONFLICT (the file changed or is shorter), QS_ENOENT, QS_EIO, QS_ENOSPC. */
int qs_localfile_writer_copy(struct qs_localfile_writer *w, int root_fd, const char *path,
			     uint64_t offset, size_t len, const struct qs_fingerprint *expect,
			     uint8_t *buf);
/* Cuts the temp file to len bytes; appends continue from there. Errors: QS_EIO. */
int qs_localfile_writer_truncate(struct qs_localfile_writer *w, uint64_t len);
/* Closes the writer and keeps its temp file for a later qs_localfile_writer_resume. */
void qs_localfile_writer_suspend(struct qs_localfile_writer *w);
/* True for the name of a resumable temp file older than max_age_s (removed at start), and for
 * any other temp file name. */
bool qs_localfile_part_is_stale(int dir_fd, const char *name, int64_t max_age_s);

/* Sets mode and mtime, optionally fsyncs, re-checks the target: it must be absent when
 * expect is NULL, or match *expect (the index's fingerprint); otherwise the user changed
 * it meanwhile and QS_ECONFLICT is returned (temp removed, target untouched). Then renames
 * the temp over the target. On success *installed holds the new file's fingerprint.
 * Errors: QS_ECONFLICT, QS_EIO. */
int qs_localfile_install(struct qs_localfile_writer *w, uint32_t mode, int64_t mtime_ns,
			 bool fsync_now, const struct qs_fingerprint *expect,
			 struct qs_fingerprint *installed);

#endif
