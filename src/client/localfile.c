/* Files beneath a synced root (see localfile.h). Every path is opened with openat2 and
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so a symlink planted anywhere on the way (or a
 * path that climbs out) fails instead of being followed. */
#include "client/localfile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/sha256.h"

#define READ_BLOCK (256 * 1024)

void qs_localfile_init(struct qs_localfile *f)
{
	memset(f, 0, sizeof(*f));
	qs_manifest_init(&f->manifest);
}

void qs_localfile_release(struct qs_localfile *f)
{
	qs_manifest_release(&f->manifest);
	qs_free(f->target);
	f->target = NULL;
}

int qs_localfile_open(int root_fd, const char *path, int flags, int *fd_out)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(unsigned int)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) ? 0600 : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	long fd;
	do {
		fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == ELOOP || errno == EXDEV ? QS_EACCES : qs_err_from_errno(errno);
	*fd_out = (int)fd;
	return 0;
}

/* Opens the directory holding path and returns the last component. */
static int open_parent(int root_fd, const char *path, int *dir_fd, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		*name = path;
		return qs_localfile_open(root_fd, ".", O_RDONLY | O_DIRECTORY, dir_fd);
	}
	char *dir = qs_strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return QS_ENOMEM;
	int rc = qs_localfile_open(root_fd, dir, O_RDONLY | O_DIRECTORY, dir_fd);
	qs_free(dir);
	*name = slash + 1;
	return rc;
}

static int hash_file_fd(int fd, uint64_t max_bytes, const atomic_bool *cancel,
			struct qs_localfile *f)
{
	uint64_t total = 0;
	struct qs_chunker ch;
	int rc = qs_chunker_init(&ch, &qs_chunker_default_params, qs_manifest_on_chunk,
				 &f->manifest);
	if (rc != 0)
		return rc;
	uint8_t *buf = qs_malloc(READ_BLOCK);
	if (buf == NULL) {
		qs_chunker_release(&ch);
		return QS_ENOMEM;
	}
	for (;;) {
		if (cancel != NULL && atomic_load_explicit(cancel, memory_order_relaxed)) {
			rc = QS_ECANCELED;
			break;
		}
		ssize_t n = read(fd, buf, READ_BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = qs_err_from_errno(errno);
			break;
		}
		if (n == 0) {
			rc = qs_chunker_finish(&ch);
			break;
		}
		total += (uint64_t)n;
		if (total > max_bytes) {
			rc = QS_EAGAIN; /* grew past the bound while read: it is being written */
			break;
		}
		rc = qs_chunker_feed(&ch, buf, (size_t)n);
		if (rc != 0)
			break;
	}
	qs_free(buf);
	qs_chunker_release(&ch);
	return rc;
}

static int content_of_manifest(struct qs_localfile *f)
{
	struct qs_buf enc;
	qs_buf_init(&enc, (size_t)64 << 20);
	int rc = qs_manifest_encode(&f->manifest, &enc);
	if (rc == 0)
		rc = qs_content_make(QS_KIND_FILE, f->mode, enc.data, enc.len, &f->content);
	qs_buf_release(&enc);
	return rc;
}

static int hash_symlink(int root_fd, const char *path, const struct stat *st,
			struct qs_localfile *f)
{
	size_t cap = (size_t)st->st_size + 1;
	if (cap < 2 || cap > 4097)
		cap = 4097;
	char *t = qs_malloc(cap);
	if (t == NULL)
		return QS_ENOMEM;
	int dir_fd;
	const char *name;
	int rc = open_parent(root_fd, path, &dir_fd, &name);
	if (rc != 0) {
		qs_free(t);
		return rc;
	}
	ssize_t n = readlinkat(dir_fd, name, t, cap);
	close(dir_fd);
	if (n < 0 || (size_t)n >= cap) {
		qs_free(t);
		return n < 0 ? qs_err_from_errno(errno) : QS_EAGAIN;
	}
	t[n] = '\0';
	f->target = t;
	f->size = (uint64_t)n;
	return qs_content_make(QS_KIND_SYMLINK, 0, (const uint8_t *)t, (size_t)n, &f->content);
}

int qs_localfile_hash(int root_fd, const char *path, struct qs_localfile *f)
{
	return qs_localfile_hash_bounded(root_fd, path, UINT64_MAX, NULL, f);
}

int qs_localfile_hash_bounded(int root_fd, const char *path, uint64_t max_bytes,
			      const atomic_bool *cancel, struct qs_localfile *f)
{
	int dir_fd;
	const char *name;
	int rc = open_parent(root_fd, path, &dir_fd, &name);
	if (rc == QS_ENOENT) {
		f->kind = QS_KIND_TOMBSTONE;
		return qs_content_make(QS_KIND_TOMBSTONE, 0, NULL, 0, &f->content);
	}
	if (rc != 0)
		return rc;
	struct stat st;
	rc = fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : qs_err_from_errno(errno);
	close(dir_fd);
	if (rc == QS_ENOENT) {
		f->kind = QS_KIND_TOMBSTONE;
		return qs_content_make(QS_KIND_TOMBSTONE, 0, NULL, 0, &f->content);
	}
	if (rc != 0)
		return rc;
	qs_fingerprint_from_stat(&st, &f->fp);
	f->mode = (uint32_t)st.st_mode & 07777u;
	f->mtime_ns = f->fp.mtime_ns;
	if (S_ISDIR(st.st_mode)) {
		f->kind = QS_KIND_DIR;
		return qs_content_make(QS_KIND_DIR, f->mode, NULL, 0, &f->content);
	}
	if (S_ISLNK(st.st_mode)) {
		f->kind = QS_KIND_SYMLINK;
		return hash_symlink(root_fd, path, &st, f);
	}
	if (!S_ISREG(st.st_mode))
		return QS_EACCES; /* devices, fifos, sockets are not synced */
	if ((uint64_t)st.st_size > max_bytes)
		return QS_E2BIG;
	f->kind = QS_KIND_FILE;
	int fd;
	rc = qs_localfile_open(root_fd, path, O_RDONLY | O_NOFOLLOW, &fd);
	if (rc != 0)
		return rc;
	struct stat st2;
	rc = hash_file_fd(fd, max_bytes, cancel, f);
	if (rc == 0 && fstat(fd, &st2) != 0)
		rc = qs_err_from_errno(errno);
	close(fd);
	if (rc != 0)
		return rc;
	struct qs_fingerprint after;
	qs_fingerprint_from_stat(&st2, &after);
	if (!qs_fingerprint_equal(&f->fp, &after))
		return QS_EAGAIN; /* written while we read: hash again when it settles */
	f->size = f->manifest.size_bytes;
	return content_of_manifest(f);
}

int qs_localfile_read_chunk(int root_fd, const char *path, uint64_t offset, size_t len,
			    const uint8_t hash[32], uint8_t *buf)
{
	int fd;
	int rc = qs_localfile_open(root_fd, path, O_RDONLY | O_NOFOLLOW, &fd);
	if (rc != 0)
		return rc;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? qs_err_from_errno(errno) : QS_ECONFLICT;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rc != 0)
		return rc;
	uint8_t d[QS_SHA256_LEN];
	rc = qs_sha256(buf, len, d);
	if (rc == 0 && memcmp(d, hash, QS_SHA256_LEN) != 0)
		rc = QS_ECONFLICT;
	return rc;
}

int qs_localfile_writer_open(struct qs_localfile_writer *w, int root_fd, const char *path)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	const char *name;
	int rc = open_parent(root_fd, path, &w->dir_fd, &name);
	if (rc != 0)
		return rc;
	w->name = qs_strdup(name);
	if (w->name == NULL) {
		close(w->dir_fd);
		return QS_ENOMEM;
	}
	uint8_t rnd[8];
	char hex[17];
	for (int attempt = 0; attempt < 8; attempt++) {
		if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) != 0)
			break;
		qs_hex_encode(rnd, sizeof(rnd), hex);
		snprintf(w->tmp_name, sizeof(w->tmp_name), "%s%s", QS_LOCALFILE_TMP_PREFIX, hex);
		w->fd = openat(w->dir_fd, w->tmp_name,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		rc = qs_err_from_errno(errno);
		close(w->dir_fd);
		qs_free(w->name);
		w->name = NULL;
		return rc != 0 ? rc : QS_EIO;
	}
	return 0;
}

int qs_localfile_writer_append(struct qs_localfile_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len > 0) {
		ssize_t n = write(w->fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qs_err_from_errno(errno);
		b += n;
		len -= (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

static void writer_close(struct qs_localfile_writer *w, bool remove_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (remove_tmp)
		unlinkat(w->dir_fd, w->tmp_name, 0);
	close(w->dir_fd);
	w->dir_fd = -1;
	qs_free(w->name);
	w->name = NULL;
}

void qs_localfile_writer_abort(struct qs_localfile_writer *w)
{
	writer_close(w, true);
}

int qs_localfile_install(struct qs_localfile_writer *w, uint32_t mode, int64_t mtime_ns,
			 bool fsync_now, const struct qs_fingerprint *expect,
			 struct qs_fingerprint *installed)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, {mtime_ns / 1000000000, mtime_ns % 1000000000}};
	int rc = 0;
	if (fchmod(w->fd, (mode_t)(mode & 07777u)) != 0 || futimens(w->fd, ts) != 0 ||
	    (fsync_now && fsync(w->fd) != 0))
		rc = qs_err_from_errno(errno);
	struct stat st;
	if (rc == 0) {
		int r = fstatat(w->dir_fd, w->name, &st, AT_SYMLINK_NOFOLLOW);
		if (r != 0 && errno != ENOENT) {
			rc = qs_err_from_errno(errno);
		} else if (expect == NULL ? r == 0 : r != 0) {
			rc = QS_ECONFLICT;
		} else if (expect != NULL) {
			struct qs_fingerprint now;
			qs_fingerprint_from_stat(&st, &now);
			if (!qs_fingerprint_equal(&now, expect))
				rc = QS_ECONFLICT; /* the user changed it: never overwrite */
		}
	}
	/* The fingerprint of what we wrote is taken before the rename: from the rename on, the
	 * user may write to the file. The one after the rename (which changes the inode's ctime,
	 * part of the fingerprint) is used only if nothing else changed: a write right after
	 * the rename (the mtime we set is the version's, any write makes it "now") must not be
	 * recorded as the version's fingerprint, or it would never be seen as a change (chaos
	 * seed 1508: an append on the just-installed file was lost to the other clients). */
	struct stat before;
	if (rc == 0 && fstat(w->fd, &before) != 0)
		rc = qs_err_from_errno(errno);
	if (rc == 0 && renameat(w->dir_fd, w->tmp_name, w->dir_fd, w->name) != 0)
		rc = qs_err_from_errno(errno);
	if (rc == 0 && fstat(w->fd, &st) != 0)
		rc = qs_err_from_errno(errno);
	if (rc == 0) {
		struct qs_fingerprint ours, now;
		qs_fingerprint_from_stat(&before, &ours);
		qs_fingerprint_from_stat(&st, &now);
		ours.ctime_ns = now.ctime_ns; /* the rename's own change */
		*installed = qs_fingerprint_equal(&ours, &now) ? now : ours;
	}
	writer_close(w, rc != 0);
	return rc;
}

/* ---- resumable downloads ------------------------------------------------------------------ */

/* 16 hex digits of SHA-256(name, NUL[, content hash]) into hex[17]. */
static int name_digest(const char *name, const uint8_t *content_hash, char hex[17])
{
	struct qs_sha256 sha;
	uint8_t digest[QS_SHA256_LEN];
	int rc = qs_sha256_init(&sha);
	if (rc != 0)
		return rc;
	qs_sha256_update(&sha, name, strlen(name) + 1);
	if (content_hash != NULL)
		qs_sha256_update(&sha, content_hash, QS_CONTENT_HASH_LEN);
	qs_sha256_final(&sha, digest);
	qs_hex_encode(digest, 8, hex);
	return 0;
}

int qs_localfile_part_prefix(const char *name, char out[64])
{
	char hex[17];
	int rc = name_digest(name, NULL, hex);
	if (rc == 0)
		snprintf(out, 64, "%s%s-", QS_LOCALFILE_PART_PREFIX, hex);
	return rc;
}

/* QS_LOCALFILE_PART_PREFIX, 16 hex digits of SHA-256(name, NUL), '-', and 16 of
 * SHA-256(name, NUL, content hash). */
static int part_name(const char *name, const uint8_t *content_hash, char out[64])
{
	char hex[17];
	int rc = qs_localfile_part_prefix(name, out);
	if (rc == 0)
		rc = name_digest(name, content_hash, hex);
	if (rc == 0)
		snprintf(out + strlen(out), 64 - strlen(out), "%s", hex);
	return rc;
}

int qs_localfile_writer_resume(struct qs_localfile_writer *w, int root_fd, const char *path,
			       const uint8_t content_hash[QS_CONTENT_HASH_LEN],
			       uint64_t *have_bytes)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	const char *name;
	int rc = open_parent(root_fd, path, &w->dir_fd, &name);
	if (rc != 0)
		return rc;
	w->name = qs_strdup(name);
	rc = w->name != NULL ? part_name(name, content_hash, w->tmp_name) : QS_ENOMEM;
	struct stat st;
	if (rc == 0) {
		w->fd = openat(w->dir_fd, w->tmp_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (w->fd < 0 || fstat(w->fd, &st) != 0)
			rc = qs_err_from_errno(errno);
		else if (!S_ISREG(st.st_mode) || lseek(w->fd, 0, SEEK_END) < 0)
			rc = QS_EIO;
	}
	if (rc != 0) {
		if (w->fd >= 0)
			close(w->fd);
		close(w->dir_fd);
		qs_free(w->name);
		w->name = NULL;
		return rc;
	}
	w->written = (uint64_t)st.st_size;
	*have_bytes = w->written;
	return 0;
}

int qs_localfile_writer_verify(struct qs_localfile_writer *w, uint64_t offset, size_t len,
			       const uint8_t hash[32], uint8_t *buf)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(w->fd, buf + got, len - got, (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return QS_EIO;
		if (n == 0)
			return QS_ECONFLICT;
		got += (size_t)n;
	}
	uint8_t h[QS_SHA256_LEN];
	int rc = qs_sha256(buf, len, h);
	if (rc != 0)
		return rc;
	return memcmp(h, hash, QS_SHA256_LEN) == 0 ? 0 : QS_ECONFLICT;
}

int qs_localfile_writer_truncate(struct qs_localfile_writer *w, uint64_t len)
{
	if (ftruncate(w->fd, (off_t)len) != 0 || lseek(w->fd, (off_t)len, SEEK_SET) < 0)
		return QS_EIO;
	w->written = len;
	return 0;
}

void qs_localfile_writer_suspend(struct qs_localfile_writer *w)
{
	writer_close(w, false);
}

bool qs_localfile_part_is_stale(int dir_fd, const char *name, int64_t max_age_s)
{
	struct stat st;
	if (strncmp(name, QS_LOCALFILE_PART_PREFIX, strlen(QS_LOCALFILE_PART_PREFIX)) != 0 ||
	    strlen(name) != QS_LOCALFILE_PART_NAME_LEN)
		return true; /* any other temp file (or an older naming): a crash's leftover */
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return false;
	return (int64_t)time(NULL) - (int64_t)st.st_mtime > max_age_s;
}

/* ---- reading for uploads ------------------------------------------------------------------ */

/* True if fd's stat fingerprint is *expect. */
static bool fd_has_fingerprint(int fd, const struct qs_fingerprint *expect)
{
	struct stat st;
	struct qs_fingerprint now;
	if (fstat(fd, &st) != 0)
		return false;
	qs_fingerprint_from_stat(&st, &now);
	return qs_fingerprint_equal(&now, expect);
}

int qs_localfile_read_upload(int root_fd, const char *path, uint64_t offset, size_t len,
			     const struct qs_fingerprint *expect, uint8_t *buf)
{
	int fd;
	int rc = qs_localfile_open(root_fd, path, O_RDONLY | O_NOFOLLOW, &fd);
	if (rc != 0)
		return rc;
	if (!fd_has_fingerprint(fd, expect))
		rc = QS_ECONFLICT;
	size_t got = 0;
	while (rc == 0 && got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? qs_err_from_errno(errno) : QS_ECONFLICT;
		else
			got += (size_t)n;
	}
	if (rc == 0 && !fd_has_fingerprint(fd, expect))
		rc = QS_ECONFLICT; /* written while we read */
	close(fd);
	return rc;
}

/* ---- copying unchanged chunks ------------------------------------------------------------- */

/* Copies len bytes at offset of fd to the writer through buf (file systems without
 * copy_file_range between these files). */
static int copy_through(struct qs_localfile_writer *w, int fd, uint64_t offset, size_t len,
			uint8_t *buf)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? qs_err_from_errno(errno) : QS_ECONFLICT;
		got += (size_t)n;
	}
	return qs_localfile_writer_append(w, buf, len);
}

/* Copies in the kernel; *unsupported (and 0) when this pair of files cannot (nothing is
 * copied then). */
static int copy_kernel(struct qs_localfile_writer *w, int fd, uint64_t offset, size_t len,
		       bool *unsupported)
{
	*unsupported = false;
	loff_t in = (loff_t)offset;
	size_t done = 0;
	while (done < len) {
		ssize_t n = copy_file_range(fd, &in, w->fd, NULL, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && done == 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			*unsupported = true;
			return 0;
		}
		if (n <= 0)
			return n < 0 ? qs_err_from_errno(errno) : QS_ECONFLICT;
		done += (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

int qs_localfile_writer_copy(struct qs_localfile_writer *w, int root_fd, const char *path,
			     uint64_t offset, size_t len, const struct qs_fingerprint *expect,
			     uint8_t *buf)
{
	int fd;
	int rc = qs_localfile_open(root_fd, path, O_RDONLY | O_NOFOLLOW, &fd);
	if (rc != 0)
		return rc;
	bool unsupported = false;
	rc = fd_has_fingerprint(fd, expect) ? copy_kernel(w, fd, offset, len, &unsupported)
					    : QS_ECONFLICT;
	if (rc == 0 && unsupported)
		rc = copy_through(w, fd, offset, len, buf);
	if (rc == 0 && !fd_has_fingerprint(fd, expect))
		rc = QS_ECONFLICT; /* written while we copied */
	close(fd);
	return rc;
}
