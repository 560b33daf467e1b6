/* MUST_SYNC and FORCE_SYNC on the client: the server announces a new version of a path. The
 * client asks only for chunks it cannot take from the old version of the same file, writes
 * the new file to a temp file in manifest order (streaming: one chunk in memory at a time),
 * verifies it, and renames it into place only if the user has not touched the path since the
 * index's view — otherwise the local change wins and is proposed instead (DESIGN.md section
 * 5). FORCE_SYNC (a rollback or a conflict choice) differs in two ways: it also replaces a
 * conflicted path whose file is still the candidate the server holds (and clears the
 * conflict), and it never answers CURRENT for a conflicted path. Bytes the server has never
 * seen are never overwritten, by either (docs/client.md, "FORCE_SYNC"). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "client/engine.h"
#include "core/chunker.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"

struct old_chunk {
	const uint8_t *hash; /* into old manifest */
	uint64_t offset;
	uint32_t len;
};

struct recv {
	struct qic_engine *e;
	struct qic_root *r;
	struct qs_tx *tx;
	char *path;
	uint64_t version;
	enum qs_kind kind;
	uint32_t mode;
	int64_t mtime_ns;
	struct qs_content content;
	struct qs_buf enc; /* manifest encoding or symlink target, for the index */
	struct qs_manifest m;
	bool have_entry;
	struct qic_entry entry; /* the index's view before this version */
	struct qs_manifest old; /* entry's manifest (files) */
	struct old_chunk *olds; /* old chunks by hash: open addressing, size nold_slots */
	size_t nold_slots;
	struct old_chunk *selfs; /* the new manifest's chunks by hash (first occurrences) */
	size_t nself_slots;
	bool *want;  /* per manifest chunk: fetched from the server */
	size_t next; /* next manifest chunk to write */
	struct qs_localfile_writer w;
	bool writing, got_request, done;
	bool want_sent;  /* the ChunkWant went out (it always precedes the SyncResult) */
	bool force;      /* FORCE_SYNC: a conflict choice or a rollback */
	bool scan_after; /* a move taken the slow way: FULL_SCAN once answered */
	bool superseded; /* a newer version was recorded while this one was received */
	bool resumable;  /* w is a part file: kept when the connection is lost */
	struct qs_chunk_rx rx;
	uint8_t *buf; /* one chunk, for local copies */
	bool counted; /* added to r->down (struct qic_transfers), linked in r->receiving */
	struct recv *rx_next, **rx_pprev;
	uint64_t xfer_done; /* this file's share of r->down.bytes_done */
};

/* A file starts arriving: it counts in its root's downloads until recv_free. */
static void xfer_start(struct recv *v)
{
	v->counted = true;
	v->r->down.files++;
	v->r->down.bytes += v->m.size_bytes;
	v->rx_next = v->r->receiving;
	if (v->rx_next != NULL)
		v->rx_next->rx_pprev = &v->rx_next;
	v->rx_pprev = &v->r->receiving;
	v->r->receiving = v;
}

static void xfer_add_done(struct recv *v, uint64_t n)
{
	if (!v->counted)
		return;
	v->xfer_done += n;
	v->r->down.bytes_done += n;
}

static void recv_free(struct recv *v)
{
	if (v->counted) {
		*v->rx_pprev = v->rx_next;
		if (v->rx_next != NULL)
			v->rx_next->rx_pprev = v->rx_pprev;
		v->r->down.files--;
		v->r->down.bytes -= v->m.size_bytes;
		v->r->down.bytes_done -= v->xfer_done;
	}
	if (v->writing)
		qs_localfile_writer_abort(&v->w);
	qs_free(v->path);
	qs_buf_release(&v->enc);
	qs_manifest_release(&v->m);
	qs_manifest_release(&v->old);
	qs_free(v->olds);
	qs_free(v->selfs);
	qs_free(v->want);
	qs_free(v->buf);
	qs_chunk_rx_release(&v->rx);
	if (v->have_entry)
		qic_entry_release(&v->entry);
	qs_free(v);
}

static void send_result(struct recv *v, Quics__SyncOutcome outcome, int err, const char *msg)
{
	if (v->done)
		return;
	v->done = true;
	qs_debug("client", "event=%s path=\"%s\" version=%llu outcome=%d err=%s",
		 v->force ? "force_sync" : "must_sync", v->path != NULL ? v->path : "",
		 (unsigned long long)v->version, (int)outcome, qs_strerror(err));
	Quics__SyncResult r = QUICS__SYNC_RESULT__INIT;
	Quics__Error e = QUICS__ERROR__INIT;
	r.outcome = outcome;
	if (err != 0) {
		e.code = qs_wire_error_code(err);
		e.message = (char *)msg;
		r.error = &e;
	}
	int rc = 0;
	if (!v->want_sent) {
		/* Failed before asking for chunks: the ChunkWant refuses the transfer (the
		 * server reads a ChunkWant first; a bare SyncResult was a protocol error to it,
		 * chaos seed 1003). */
		Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
		if (err != 0)
			w.error = &e;
		v->want_sent = true;
		rc = qs_tx_send_pb(v->tx, &w.base);
	}
	if (rc != 0 || qs_tx_send_pb(v->tx, &r.base) != 0 || qs_tx_finish(v->tx) != 0)
		qs_tx_cancel(v->tx, QS_QUIC_ERR_INTERNAL);
	/* A move taken the slow way: the scan brings the old names' deletions and the rest.
	 * Not after a failure: the scan would push the same version again at once, and fail
	 * again, without end (chaos seed 1003: 180,000 pushes of a path below a file). */
	if (v->scan_after && err == 0) {
		qic_root_full_scan(v->r);
	} else if (err == 0 && outcome == QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED) {
		/* Chaos seed 7017: the files of a directory chosen over this client's file had
		 * failed to apply below the file, and never came again. */
		qic_retry_failed_pushes(v->r);
	}
}

static int send_want(struct recv *v)
{
	Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
	ProtobufCBinaryData *hs = qs_calloc(v->m.count ? v->m.count : 1, sizeof(*hs));
	if (hs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < v->m.count; i++) {
		if (v->want != NULL && v->want[i]) {
			hs[w.n_hashes].data = v->m.chunks[i].sha256;
			hs[w.n_hashes].len = QS_SHA256_LEN;
			w.n_hashes++;
		}
	}
	w.hashes = hs;
	int rc = qs_tx_send_pb(v->tx, &w.base);
	qs_free(hs);
	v->want_sent = true;
	return rc;
}

/* ---- the local state and the index ---- */

static int open_parent_dir(struct recv *v, int *fd, const char **name);

/* A FORCE_SYNC onto a path where this client's proposal is a conflict candidate. */
static bool forced_candidate(const struct recv *v)
{
	return v->force && v->have_entry && v->entry.conflicted;
}

/* Whether the local path is still what the index says (so it may be replaced): compared by
 * stat fingerprint, so unchanged files are never re-read. A path the index does not know is
 * replaceable only if absent, or if it already holds exactly the incoming content. */
static int local_matches_index(struct recv *v, bool *matches)
{
	int dfd;
	const char *name;
	struct stat st;
	bool present = false;
	int rc = open_parent_dir(v, &dfd, &name);
	if (rc == 0) {
		present = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (!present && errno != ENOENT)
			rc = qs_err_from_errno(errno);
		close(dfd);
	} else if (rc == QS_ENOENT) {
		rc = 0;
	}
	if (rc != 0)
		return rc;
	if (forced_candidate(v)) {
		/* The path holds our conflict candidate (as the index recorded it when proposed):
		 * the user's choice replaces it. Changed since: a new local change, kept. */
		if (v->entry.candidate.kind == QS_KIND_TOMBSTONE) {
			*matches = !present;
		} else if (v->entry.candidate.kind == QS_KIND_DIR) {
			*matches = present && S_ISDIR(st.st_mode);
		} else {
			struct qs_fingerprint fp;
			if (present)
				qs_fingerprint_from_stat(&st, &fp);
			*matches = present && qs_fingerprint_equal(&fp, &v->entry.fp);
		}
		return 0;
	}
	if (v->have_entry && v->entry.conflicted) {
		/* Our candidate (or the user's later edit) is there: only the user's choice
		 * (FORCE_SYNC) replaces it, never a newer version, such as the one a FULL_SCAN
		 * pushes after a reconnect (docs/conflicts.md, 3). */
		*matches = false;
		return 0;
	}
	if (v->have_entry && v->entry.content.kind == QS_KIND_DIR) {
		*matches = present && S_ISDIR(st.st_mode);
		return 0;
	}
	if (v->have_entry && v->entry.content.kind != QS_KIND_TOMBSTONE) {
		struct qs_fingerprint fp;
		if (present)
			qs_fingerprint_from_stat(&st, &fp);
		*matches = present && qs_fingerprint_equal(&fp, &v->entry.fp);
		return 0;
	}
	*matches = !present;
	if (present) {
		struct qs_localfile f;
		qs_localfile_init(&f);
		if (qs_localfile_hash(v->r->dir_fd, v->path, &f) == 0)
			*matches = qs_content_equal(&f.content, &v->content);
		qs_localfile_release(&f);
	}
	return 0;
}

/* Cancels download o, which v made useless (it may free o). */
static void cancel_superseded(struct recv *o, const struct recv *v)
{
	o->done = true;
	o->superseded = true;
	qs_debug("client", "event=download_superseded path=\"%s\" version=%llu by=\"%s\" v%llu",
		 o->path, (unsigned long long)o->version, v->path, (unsigned long long)v->version);
	qs_tx_cancel(o->tx, QS_QUIC_ERR_CANCELED);
}

/* Another download of v's path still running: of v's version or a newer one (newer), or of
 * an older one (!newer). */
static struct recv *running_download(const struct recv *v, bool newer)
{
	for (struct recv *o = v->r->receiving; o != NULL; o = o->rx_next)
		if (o != v && !o->done && (o->version >= v->version) == newer &&
		    strcmp(o->path, v->path) == 0)
			return o;
	return NULL;
}

/* Downloads of older versions of v's path still running (a push of the version before
 * arrived first, and the newer one overtook it): their bytes can never be installed, so they
 * are canceled now, their part files removed, rather than received to the end (a 64 MiB
 * download ran on for seconds after its newer version was in place, its part file with it). */
static void supersede_older(struct recv *v)
{
	struct recv *o;
	while ((o = running_download(v, false)) != NULL)
		cancel_superseded(o, v); /* may free o: look again */
}

/* Downloads at or below from, which this client just moved away as the server did: their
 * version lives on at the new name (the move's list, or a FULL_SCAN, brings it there), so
 * they are canceled rather than received to the end and thrown away. A part file went along
 * with its directory, where the download at the new name resumes it: it is kept (closed now,
 * before that download can open it) and noted there. */
static void supersede_below(struct recv *v, const char *from)
{
	size_t n = strlen(from);
	for (struct recv *o = v->r->receiving; o != NULL;) {
		if (o == v || o->done || !qs_path_str_within(o->path, from)) {
			o = o->rx_next;
			continue;
		}
		if (o->writing && o->resumable && o->path[n] == '/') {
			char part[sizeof(o->w.tmp_name)];
			memcpy(part, o->w.tmp_name, sizeof(part));
			qs_localfile_writer_suspend(&o->w);
			o->writing = false;
			size_t tl = strlen(v->path), rest = strlen(o->path + n);
			char *moved = qs_malloc(tl + rest + 1);
			if (moved != NULL) {
				memcpy(moved, v->path, tl);
				memcpy(moved + tl, o->path + n, rest + 1);
				qic_parts_note(v->r, moved, part);
				qs_free(moved);
			}
		}
		cancel_superseded(o, v); /* may free o: look again */
		o = v->r->receiving;
	}
}

static int record(struct recv *v, const struct qs_fingerprint *fp)
{
	struct qic_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = v->version;
	e.content = v->content;
	if (fp != NULL)
		e.fp = *fp;
	e.manifest = v->enc.data;
	e.manifest_len = v->enc.len;
	e.mode = v->mode;
	e.mtime_ns = v->mtime_ns;
	e.durable = v->kind != QS_KIND_FILE; /* files are synced to disk in batches */
	int rc = qic_index_put(v->r, v->path, &e);
	if (rc == 0)
		supersede_older(v);
	return rc;
}

/* A FORCE_SYNC chose our own candidate, but the path changed here since we proposed it (the
 * user deleted or edited the conflicted copy while the choice was on its way): the choice is
 * our base now, and the change, made on top of the candidate, is proposed on top of it. */
static int adopt_chosen_candidate(struct recv *v)
{
	struct qic_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = v->version;
	e.content = v->content;
	e.fp = v->entry.fp; /* the candidate's stat when proposed: the change differs from it */
	e.manifest = v->enc.data;
	e.manifest_len = v->enc.len;
	e.mode = v->mode;
	e.mtime_ns = v->mtime_ns;
	e.durable = true; /* nothing was written here */
	int rc = qic_index_put(v->r, v->path, &e);
	if (rc == 0)
		qic_mark_dirty(v->r, v->path);
	return rc;
}

/* mkdir -p of path's parent directories beneath the root (never through symlinks). */
static int make_parents(struct recv *v)
{
	char *p = qs_strdup(v->path);
	if (p == NULL)
		return QS_ENOMEM;
	int rc = 0;
	for (char *s = strchr(p, '/'); s != NULL && rc == 0; s = strchr(s + 1, '/')) {
		*s = '\0';
		int fd;
		rc = qs_localfile_open(v->r->dir_fd, p, O_RDONLY | O_DIRECTORY, &fd);
		if (rc == 0) {
			close(fd);
		} else if (rc == QS_ENOENT) {
			const char *slash = strrchr(p, '/');
			int pfd;
			char *parent =
				slash != NULL ? qs_strndup(p, (size_t)(slash - p)) : qs_strdup(".");
			rc = parent == NULL ? QS_ENOMEM
					    : qs_localfile_open(v->r->dir_fd, parent,
								O_RDONLY | O_DIRECTORY, &pfd);
			qs_free(parent);
			if (rc == 0) {
				if (mkdirat(pfd, slash != NULL ? slash + 1 : p, 0755) != 0 &&
				    errno != EEXIST)
					rc = qs_err_from_errno(errno);
				close(pfd);
			}
		}
		*s = '/';
	}
	qs_free(p);
	return rc;
}

static int open_parent_dir(struct recv *v, int *fd, const char **name)
{
	const char *slash = strrchr(v->path, '/');
	*name = slash != NULL ? slash + 1 : v->path;
	if (slash == NULL)
		return qs_localfile_open(v->r->dir_fd, ".", O_RDONLY | O_DIRECTORY, fd);
	char *parent = qs_strndup(v->path, (size_t)(slash - v->path));
	if (parent == NULL)
		return QS_ENOMEM;
	int rc = qs_localfile_open(v->r->dir_fd, parent, O_RDONLY | O_DIRECTORY, fd);
	qs_free(parent);
	return rc;
}

/* ---- applying non-file kinds ---- */

static int apply_tombstone(struct recv *v)
{
	int dfd;
	const char *name;
	int rc = open_parent_dir(v, &dfd, &name);
	if (rc == QS_ENOENT)
		return record(v, NULL);
	if (rc != 0)
		return rc;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
		if (unlinkat(dfd, name, flags) != 0) {
			if (errno == ENOTEMPTY || errno == EEXIST)
				qic_defer_rmdir(v->r, v->path); /* its entries' deletions follow */
			else if (errno != ENOENT)
				rc = qs_err_from_errno(errno);
		}
	}
	close(dfd);
	return rc == 0 ? record(v, NULL) : rc;
}

/* The kind the index holds at v->path: for a conflict choice, our candidate's. */
static enum qs_kind held_kind(const struct recv *v)
{
	return forced_candidate(v) ? v->entry.candidate.kind : v->entry.content.kind;
}

/* Whether the non-directory st at v->path is exactly what the index recorded there: a file or
 * symlink version (or, for a conflict choice, our file candidate), unchanged since. */
static bool replaceable_file(const struct recv *v, const struct stat *st)
{
	if (!v->have_entry || (v->entry.conflicted && !forced_candidate(v)))
		return false;
	enum qs_kind kind = held_kind(v);
	if (kind != QS_KIND_FILE && kind != QS_KIND_SYMLINK)
		return false;
	struct qs_fingerprint fp;
	qs_fingerprint_from_stat(st, &fp);
	return qs_fingerprint_equal(&fp, &v->entry.fp);
}

static int apply_dir(struct recv *v)
{
	int rc = make_parents(v);
	int dfd;
	const char *name;
	if (rc == 0)
		rc = open_parent_dir(v, &dfd, &name);
	if (rc != 0)
		return rc;
	mode_t mode = (mode_t)(v->mode ? v->mode : 0755);
	if (mkdirat(dfd, name, mode) != 0 && errno != EEXIST)
		rc = qs_err_from_errno(errno);
	struct stat st;
	struct qs_fingerprint fp;
	if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
	    replaceable_file(v, &st)) {
		/* A file (or symlink) the index knows as a version (or as our candidate) becomes
		 * the directory: its bytes are on the server. Before, the file stayed, and the
		 * refused push came back without end (a kind conflict resolved to the directory).
		 */
		if ((unlinkat(dfd, name, 0) != 0 && errno != ENOENT) ||
		    (mkdirat(dfd, name, mode) != 0 && errno != EEXIST))
			rc = qs_err_from_errno(errno);
	}
	if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		if (v->mode != 0)
			fchmodat(dfd, name, (mode_t)v->mode, 0);
		qs_fingerprint_from_stat(&st, &fp);
	} else if (rc == 0) {
		rc = QS_ECONFLICT; /* something else sits there */
	}
	close(dfd);
	return rc == 0 ? record(v, &fp) : rc;
}

static int apply_symlink(struct recv *v)
{
	int rc = make_parents(v);
	int dfd;
	const char *name;
	if (rc == 0)
		rc = open_parent_dir(v, &dfd, &name);
	if (rc != 0)
		return rc;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%slink-%llu", QS_LOCALFILE_TMP_PREFIX,
		 (unsigned long long)v->version);
	char *target = qs_strndup((const char *)v->enc.data, v->enc.len);
	if (target == NULL) {
		close(dfd);
		return QS_ENOMEM;
	}
	unlinkat(dfd, tmp, 0);
	if (symlinkat(target, dfd, tmp) != 0 || renameat(dfd, tmp, dfd, name) != 0)
		rc = qs_err_from_errno(errno);
	qs_free(target);
	struct stat st;
	struct qs_fingerprint fp;
	if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		qs_fingerprint_from_stat(&st, &fp);
	close(dfd);
	return rc == 0 ? record(v, &fp) : rc;
}

/* ---- files: plan, stream, install ---- */

static size_t slot_of(const uint8_t *h, size_t nslots)
{
	uint64_t x;
	memcpy(&x, h, sizeof(x));
	return (size_t)x & (nslots - 1);
}

/* A table of m's chunks by hash (the first occurrence of each, with its offset in m's file):
 * open addressing, *nslots a power of two. */
static int index_chunks(const struct qs_manifest *m, struct old_chunk **tab, size_t *nslots)
{
	size_t n = 16;
	while (n < m->count * 2)
		n *= 2;
	*tab = qs_calloc(n, sizeof(**tab));
	if (*tab == NULL)
		return QS_ENOMEM;
	*nslots = n;
	uint64_t off = 0;
	for (size_t i = 0; i < m->count; i++) {
		size_t s = slot_of(m->chunks[i].sha256, n);
		while ((*tab)[s].hash != NULL &&
		       memcmp((*tab)[s].hash, m->chunks[i].sha256, QS_SHA256_LEN) != 0)
			s = (s + 1) & (n - 1);
		if ((*tab)[s].hash == NULL) {
			(*tab)[s].hash = m->chunks[i].sha256;
			(*tab)[s].offset = off;
			(*tab)[s].len = m->chunks[i].len_bytes;
		}
		off += m->chunks[i].len_bytes;
	}
	return 0;
}

static const struct old_chunk *find_in(const struct old_chunk *tab, size_t nslots, const uint8_t *h)
{
	if (tab == NULL)
		return NULL;
	for (size_t s = slot_of(h, nslots); tab[s].hash != NULL; s = (s + 1) & (nslots - 1))
		if (memcmp(tab[s].hash, h, QS_SHA256_LEN) == 0)
			return &tab[s];
	return NULL;
}

/* Index of the old version's chunks by hash (the first occurrence of each). */
static int index_old(struct recv *v)
{
	/* A conflicted file holds the candidate, not the base manifest's bytes. */
	if (!v->have_entry || v->entry.content.kind != QS_KIND_FILE || v->entry.manifest_len == 0 ||
	    v->entry.conflicted)
		return 0;
	int rc = qs_manifest_decode(&v->old, v->entry.manifest, v->entry.manifest_len);
	if (rc != 0)
		return 0; /* an unreadable old manifest only means fetching everything */
	return index_chunks(&v->old, &v->olds, &v->nold_slots);
}

static const struct old_chunk *find_old(struct recv *v, const uint8_t *h)
{
	return find_in(v->olds, v->nold_slots, h);
}

/* A chunk that occurs earlier in the new file itself (runs of zeros, repeated blocks) is
 * copied from the part written so far instead of being fetched again. */
static const struct old_chunk *find_earlier(struct recv *v, size_t i)
{
	const struct old_chunk *c = find_in(v->selfs, v->nself_slots, v->m.chunks[i].sha256);
	return c != NULL && c->hash != v->m.chunks[i].sha256 ? c : NULL;
}

/* Copies a chunk of the old version of the file (the index's, which the user has not touched:
 * local_matches_index) in the kernel; its stat fingerprint is checked around the copy instead
 * of hashing the bytes again. */
static int copy_old(struct recv *v, const struct old_chunk *o)
{
	return qs_localfile_writer_copy(&v->w, v->r->dir_fd, v->path, o->offset, o->len,
					&v->entry.fp, v->buf);
}

/* Whether the index recorded this version or a newer one of the path since this transfer
 * started (another push of it, such as a deletion that overtook this download): installing
 * now would bring the older content back and record it as agreed (chaos seed 24: the file
 * stayed on this client although the server had deleted it). */
static bool superseded(struct recv *v)
{
	struct qic_entry cur;
	if (qic_index_get(v->r, v->path, &cur) != 0)
		return false;
	bool newer = cur.base_version >= v->version && !(v->force && cur.conflicted) &&
		     (!v->have_entry || cur.base_version != v->entry.base_version);
	qic_entry_release(&cur);
	return newer;
}

static int install_file(struct recv *v)
{
	struct qs_fingerprint fp;
	if (superseded(v)) {
		qs_localfile_writer_abort(&v->w);
		v->writing = false;
		v->superseded = true;
		return 0;
	}
	const struct qs_fingerprint *expect =
		v->have_entry && v->entry.content.kind != QS_KIND_TOMBSTONE ? &v->entry.fp : NULL;
	enum qs_kind had = held_kind(v);
	if (forced_candidate(v))
		expect = had == QS_KIND_FILE ? &v->entry.fp : NULL;
	if (v->have_entry && had == QS_KIND_DIR) {
		/* The directory the index knows there becomes this file: removed if empty (a
		 * kind conflict resolved to the file); anything left in it is a local change. */
		int dfd;
		const char *name;
		struct stat st;
		int rc = open_parent_dir(v, &dfd, &name);
		if (rc == 0) {
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode) && unlinkat(dfd, name, AT_REMOVEDIR) != 0)
				rc = errno == ENOTEMPTY || errno == EEXIST
					     ? QS_ECONFLICT
					     : qs_err_from_errno(errno);
			close(dfd);
		}
		if (rc != 0) {
			qs_localfile_writer_abort(&v->w);
			v->writing = false;
			return rc;
		}
		expect = NULL;
	}
	v->writing = false;
	int rc = qs_localfile_install(&v->w, v->mode, v->mtime_ns, false, expect, &fp);
	if (rc == 0)
		rc = record(v, &fp);
	return rc;
}

/* Writes every chunk available locally, up to the next one the server must send; installs
 * the file when all are written. */
static int advance(struct recv *v)
{
	while (v->next < v->m.count && !v->want[v->next]) {
		const struct qs_manifest_chunk *c = &v->m.chunks[v->next];
		const struct old_chunk *o = find_old(v, c->sha256), *e = NULL;
		if (o == NULL)
			e = find_earlier(v, v->next);
		int rc = o != NULL ? copy_old(v, o) : QS_EIO;
		if (o == NULL && e != NULL)
			rc = qs_localfile_writer_verify(&v->w, e->offset, e->len, c->sha256,
							v->buf);
		if (o == NULL && rc == 0)
			rc = qs_localfile_writer_append(&v->w, v->buf, c->len_bytes);
		if (rc != 0)
			return rc; /* QS_ECONFLICT: the old file changed under us */
		xfer_add_done(v, c->len_bytes);
		v->next++;
	}
	if (v->next < v->m.count)
		return 0;
	int rc = install_file(v);
	if (rc == 0)
		send_result(v,
			    v->superseded ? QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT
					  : QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED,
			    0, NULL);
	return rc;
}

/* A download of this version that an earlier attempt left in its part file
 * (qs_localfile_writer_resume): the leading chunks that still verify are kept and not wanted,
 * the rest of the file is cut off. */
static int resume_prefix(struct recv *v, uint64_t have)
{
	uint64_t off = 0;
	size_t i = 0;
	for (; i < v->m.count; i++) {
		const struct qs_manifest_chunk *c = &v->m.chunks[i];
		if (have - off < c->len_bytes ||
		    qs_localfile_writer_verify(&v->w, off, c->len_bytes, c->sha256, v->buf) != 0)
			break;
		off += c->len_bytes;
	}
	int rc = qs_localfile_writer_truncate(&v->w, off);
	if (rc != 0)
		return rc;
	for (size_t k = 0; k < i; k++)
		v->want[k] = false;
	v->next = i;
	if (i > 0)
		qs_info("client", "event=download_resumed path=\"%s\" chunks=%zu bytes=%llu",
			v->path, i, (unsigned long long)off);
	return 0;
}

/* A file with a manifest: its part file is resumed, chunks of the old version are copied,
 * the rest is asked for. */
static int start_chunked_file(struct recv *v)
{
	uint64_t have = 0;
	int rc = qs_localfile_writer_resume(&v->w, v->r->dir_fd, v->path, v->content.hash, &have);
	if (rc != 0)
		return rc;
	qic_parts_forget(v->r, v->path, v->w.tmp_name); /* ours now */
	v->writing = true;
	xfer_start(v);
	v->resumable = true;
	rc = index_old(v);
	v->want = qs_calloc(v->m.count, sizeof(*v->want));
	v->buf = qs_malloc(QS_CHUNKER_MAX_BYTES);
	if (rc == 0 && (v->want == NULL || v->buf == NULL))
		rc = QS_ENOMEM;
	if (rc == 0)
		rc = index_chunks(&v->m, &v->selfs, &v->nself_slots);
	for (size_t i = 0; rc == 0 && i < v->m.count; i++)
		v->want[i] =
			find_old(v, v->m.chunks[i].sha256) == NULL && find_earlier(v, i) == NULL;
	if (rc == 0)
		rc = resume_prefix(v, have);
	if (rc == 0)
		rc = send_want(v);
	if (rc == 0)
		rc = advance(v);
	return rc;
}

/* ---- moves (docs/client.md, "moves") ---- */

static int any_live_below(void *arg, const char *path, const struct qic_entry *e)
{
	const char *to = arg;
	return strcmp(path, to) != 0 && e->content.kind != QS_KIND_TOMBSTONE;
}

/* Opens path's parent directory beneath the root; *name is its last component. */
static int open_parent_of(struct qic_root *r, const char *path, int *fd, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash != NULL ? slash + 1 : path;
	char *parent = slash != NULL ? qs_strndup(path, (size_t)(slash - path)) : qs_strdup(".");
	int rc = parent == NULL ? QS_ENOMEM
				: qs_localfile_open(r->dir_fd, parent, O_RDONLY | O_DIRECTORY, fd);
	qs_free(parent);
	return rc;
}

/* Whether the local path is what the index entry e says (a file or symlink by its stat
 * fingerprint, a directory by being one); *fp gets its fingerprint. */
static bool local_is(struct qic_root *r, const char *path, const struct qic_entry *e,
		     struct qs_fingerprint *fp)
{
	int dfd;
	const char *name;
	struct stat st;
	if (open_parent_of(r, path, &dfd, &name) != 0)
		return false;
	bool present = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(dfd);
	if (!present)
		return false;
	qs_fingerprint_from_stat(&st, fp);
	if (e->content.kind == QS_KIND_DIR)
		return S_ISDIR(st.st_mode);
	return !S_ISDIR(st.st_mode) && qs_fingerprint_equal(fp, &e->fp);
}

/* Whether this client can take the move by renaming: moved_from is what the index says
 * (same content as the pushed state, untouched locally), and the new name is free here or
 * holds what the index says. *replace: the new name exists and is replaced. */
static bool move_possible(struct recv *v, const char *from, bool *replace)
{
	struct qic_entry fe;
	struct qs_fingerprint fp;
	if (qic_index_get(v->r, from, &fe) != 0)
		return false;
	bool ok = fe.content.kind != QS_KIND_TOMBSTONE && !fe.conflicted &&
		  qs_content_equal(&fe.content, &v->content) && local_is(v->r, from, &fe, &fp);
	qic_entry_release(&fe);
	if (!ok || qic_index_each_below(v->r, v->path, any_live_below, v->path) != 0)
		return false;
	int dfd;
	const char *name;
	struct stat st;
	if (make_parents(v) != 0 || open_parent_dir(v, &dfd, &name) != 0)
		return false;
	bool present = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(dfd);
	*replace = present;
	if (!present)
		return true;
	return v->have_entry && v->entry.content.kind != QS_KIND_TOMBSTONE &&
	       !v->entry.conflicted &&
	       (v->entry.content.kind == QS_KIND_DIR) == (v->kind == QS_KIND_DIR) &&
	       local_is(v->r, v->path, &v->entry, &fp);
}

/* Renames from to v->path on disk (never replacing anything unless *replace) and records
 * the move in the index. *applied is false when this client cannot take the move that way
 * (then nothing changed and the caller applies v->path as a new version). */
static int try_move(struct recv *v, const Quics__MustSyncRequest *req, bool *applied)
{
	*applied = false;
	const char *from = req->moved_from;
	size_t tlen = strlen(v->path);
	if (qs_path_check(from, strlen(from)) != 0 || strcmp(from, v->path) == 0)
		return QS_EPROTO;
	for (size_t i = 0; i < req->n_moved; i++) {
		const char *p = req->moved[i]->path;
		if (qs_path_check(p, strlen(p)) != 0 || strncmp(p, v->path, tlen) != 0 ||
		    (p[tlen] != '\0' && p[tlen] != '/'))
			return QS_EPROTO;
	}
	bool replace = false;
	if (!move_possible(v, from, &replace))
		return 0;
	int fdf, fdt;
	const char *nf, *nt;
	int rc = open_parent_of(v->r, from, &fdf, &nf);
	if (rc != 0)
		return 0;
	rc = open_parent_dir(v, &fdt, &nt);
	if (rc != 0) {
		close(fdf);
		return 0;
	}
	struct stat st;
	bool moved = renameat2(fdf, nf, fdt, nt, replace ? 0 : RENAME_NOREPLACE) == 0;
	bool restat = moved && fstatat(fdt, nt, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(fdf);
	close(fdt);
	if (!moved)
		return 0; /* changed under us: take the slow way */
	*applied = true;
	supersede_below(v, from);
	bool stale = false;
	rc = qic_move_record(v->r, from, v->path, req->moved, req->n_moved, &stale);
	struct qic_entry e;
	if (rc == 0 && restat && qic_index_get(v->r, v->path, &e) == 0) {
		/* A rename changes the inode's ctime only: keep the rest of the fingerprint. */
		struct qs_fingerprint fp;
		qs_fingerprint_from_stat(&st, &fp);
		if (fp.inode == e.fp.inode && fp.size == e.fp.size &&
		    fp.mtime_ns == e.fp.mtime_ns) {
			e.fp = fp;
			rc = qic_index_put(v->r, v->path, &e);
		}
		qic_entry_release(&e);
	}
	if (rc != 0) {
		qic_engine_rescan(v->e);
		stale = true;
	}
	if (stale)
		qic_root_full_scan(v->r);
	return rc;
}

static int start_file(struct recv *v, const Quics__FileState *st)
{
	int rc = make_parents(v);
	if (rc == 0 && st->inline_data.len == 0 && v->m.count > 0)
		return start_chunked_file(v);
	if (rc == 0)
		rc = qs_localfile_writer_open(&v->w, v->r->dir_fd, v->path);
	if (rc != 0)
		return rc;
	v->writing = true;
	xfer_start(v);
	if (st->inline_data.len > 0)
		rc = qs_localfile_writer_append(&v->w, st->inline_data.data, st->inline_data.len);
	if (rc == 0)
		xfer_add_done(v, st->inline_data.len);
	if (rc == 0)
		rc = send_want(v);
	if (rc == 0)
		rc = install_file(v);
	if (rc == 0)
		send_result(v,
			    v->superseded ? QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT
					  : QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED,
			    0, NULL);
	return rc;
}

/* ---- subtree deletes (docs/client.md, "subtree deletes") ---- */

/* One path of an announced subtree delete: removed when the local copy is what the index
 * says (a directory once empty, else when its entries are gone), then recorded as deleted at
 * version; a local change is kept and proposed; a path the index does not know, or holds as
 * a conflict, is left alone. */
static void delete_one(struct qic_root *r, const char *path, uint64_t version)
{
	struct qic_entry e;
	if (qic_index_get(r, path, &e) != 0) {
		/* Never had it (its push may still be on its way): remember that it is gone at
		 * this version, so an older push arriving late is not installed (chaos seed 1775).
		 * Something the user made there is theirs: looked at, never recorded over. */
		int dfd;
		const char *name;
		struct stat st;
		int rc = open_parent_of(r, path, &dfd, &name);
		bool present = rc != QS_ENOENT; /* an unreadable parent counts as present */
		if (rc == 0) {
			present = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
				  errno != ENOENT;
			close(dfd);
		}
		memset(&e, 0, sizeof(e));
		e.base_version = version;
		e.content.kind = QS_KIND_TOMBSTONE;
		e.durable = true;
		if (present || qic_index_put(r, path, &e) != 0)
			qic_mark_dirty(r, path);
		return;
	}
	bool skip = e.base_version >= version || e.conflicted;
	enum qs_kind kind = e.content.kind;
	int dfd = -1;
	const char *name;
	struct stat st;
	bool present = !skip && kind != QS_KIND_TOMBSTONE &&
		       open_parent_of(r, path, &dfd, &name) == 0 &&
		       fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	bool record_it = !skip;
	if (present && kind == QS_KIND_DIR) {
		if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			qic_defer_rmdir(r, path); /* what is left in it is looked at on its own */
	} else if (present) {
		struct qs_fingerprint fp;
		qs_fingerprint_from_stat(&st, &fp);
		if (!S_ISDIR(st.st_mode) && qs_fingerprint_equal(&fp, &e.fp))
			record_it = unlinkat(dfd, name, 0) == 0 || errno == ENOENT;
		else
			record_it = false;
		if (!record_it)
			qic_mark_dirty(r, path); /* the user's change: proposed, never deleted */
	}
	if (dfd >= 0)
		close(dfd);
	qic_entry_release(&e);
	if (record_it) {
		memset(&e, 0, sizeof(e));
		e.base_version = version;
		e.content.kind = QS_KIND_TOMBSTONE;
		e.durable = true;
		if (qic_index_put(r, path, &e) != 0)
			qic_mark_dirty(r, path);
	}
}

/* The paths a MUST_SYNC's subtree delete lists (req->deleted), deepest first; path itself
 * (listed first when it was deleted too) is left to the ordinary apply. */
static int apply_deleted(struct recv *v, const Quics__MustSyncRequest *req)
{
	size_t tlen = strlen(v->path);
	for (size_t i = 0; i < req->n_deleted; i++) {
		const char *p = req->deleted[i]->path;
		if (qs_path_check(p, strlen(p)) != 0 || strncmp(p, v->path, tlen) != 0 ||
		    (p[tlen] != '\0' && p[tlen] != '/') || req->deleted[i]->version == 0)
			return QS_EPROTO;
	}
	for (size_t i = req->n_deleted; i-- > 0;)
		if (strcmp(req->deleted[i]->path, v->path) != 0)
			delete_one(v->r, req->deleted[i]->path, req->deleted[i]->version);
	qs_info("client", "event=delete_tree_applied dir=\"%s\" paths=%zu", v->path,
		req->n_deleted);
	return 0;
}

/* ---- the transaction ---- */

/* Whether the path changed under this transfer because another push of it was installed
 * meanwhile, not because the user changed it: the index moved on since the transfer started
 * and the local path is what the index now says. Then *now_version is the index's base. */
static bool overtaken(struct recv *v, uint64_t *now_version)
{
	struct qic_entry cur;
	if (qic_index_get(v->r, v->path, &cur) != 0)
		return false;
	bool moved = !v->have_entry || cur.base_version != v->entry.base_version;
	if (v->have_entry)
		qic_entry_release(&v->entry);
	v->entry = cur; /* v is ending: compare the local path with the index's view now */
	v->have_entry = true;
	bool matches = false;
	if (moved && local_matches_index(v, &matches) != 0)
		matches = false;
	*now_version = cur.base_version;
	return moved && matches;
}

static void fail(struct recv *v, int rc)
{
	uint64_t now_version;
	if (rc == QS_ECONFLICT && v->path != NULL && overtaken(v, &now_version)) {
		/* Streams can overtake each other: an older version's push (small, inline) was
		 * installed while this newer one waited for its chunks, so the newer one found
		 * the file changed. Not a local change: proposing would send nothing (the file is
		 * what the index says) and the path would stay at the older version (chaos seed
		 * 25). Ask the server again for what is current. */
		if (now_version >= v->version) {
			send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT, 0, NULL);
			return;
		}
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_UNSPECIFIED, QS_EAGAIN,
			    "another version of the path was installed meanwhile");
		qic_root_full_scan(v->r);
		return;
	}
	if (rc == QS_ECONFLICT) {
		/* The user changed the path: keep it, propose it (the server decides). */
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_LOCAL_CHANGE, 0, NULL);
		qic_push_refused(v->r, v->path);
		qic_mark_dirty(v->r, v->path);
		return;
	}
	qs_warn("client", "event=apply_failed path=\"%s\" err=%s", v->path, qs_strerror(rc));
	qic_push_failed(v->r); /* asked for again later (qic_retry_failed_pushes) */
	send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_UNSPECIFIED, rc, qs_strerror(rc));
}

/* The fields MUST_SYNC and FORCE_SYNC requests share. */
struct push_req {
	uint64_t root_id;
	const char *path;
	uint64_t version;
	const Quics__FileState *state;
	const Quics__MustSyncRequest *must; /* MUST_SYNC only (moves), else NULL */
};

static int on_request(struct recv *v, const struct push_req *req)
{
	if (req->state == NULL || qs_filestate_check(req->state) != 0 ||
	    qs_path_check(req->path, strlen(req->path)) != 0)
		return QS_EPROTO;
	v->r = qic_root_by_id(v->e, req->root_id);
	if (v->r == NULL)
		return QS_ENOENT;
	if (v->r->paused)
		return QS_EAGAIN; /* never write into a folder that may not be the root */
	v->path = qs_strdup(req->path);
	if (v->path == NULL)
		return QS_ENOMEM;
	v->version = req->version;
	const Quics__FileState *st = req->state;
	v->kind = (enum qs_kind)qs_filestate_kind(st->kind);
	v->mode = st->mode;
	v->mtime_ns = st->mtime_ns;
	int rc = qs_filestate_content(st, &v->content, &v->enc);
	if (rc == 0 && v->kind == QS_KIND_FILE)
		rc = qs_filestate_manifest(st, &v->m);
	if (rc != 0)
		return rc;
	if (req->must != NULL && req->must->n_deleted > 0 &&
	    (rc = apply_deleted(v, req->must)) != 0)
		return rc;
	v->have_entry = qic_index_get(v->r, v->path, &v->entry) == 0;
	if (v->have_entry && v->entry.base_version >= v->version &&
	    !(v->force && v->entry.conflicted)) {
		send_want(v);
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT, 0, NULL);
		return 0;
	}
	if (req->must != NULL && req->must->moved_from[0] != '\0') {
		/* The old name is gone on the server: part files of downloads under it can never
		 * be resumed, whether the move applies here or not (chaos seed 755: the old name
		 * never arrived here, so no index change of it would ever remove its part file). */
		qic_parts_drop_below(v->r, req->must->moved_from, req->must->moved_from);
		bool applied;
		rc = try_move(v, req->must, &applied);
		if (rc != 0 || applied) {
			if (rc == 0) {
				send_want(v);
				send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED, 0, NULL);
			}
			return rc;
		}
		v->scan_after = true;
	}
	bool matches;
	rc = local_matches_index(v, &matches);
	if (rc != 0)
		return rc;
	if (!matches) {
		if (forced_candidate(v) && qs_content_equal(&v->entry.candidate, &v->content) &&
		    (rc = adopt_chosen_candidate(v)) != 0)
			return rc;
		send_want(v);
		return QS_ECONFLICT;
	}
	if (v->kind == QS_KIND_FILE && running_download(v, true) != NULL) {
		/* The same version (or a newer one) of this path is being received already, into
		 * the same part file: two writers of one part file installed an empty part over
		 * the file (chaos_overtake under load). That one applies it. */
		send_want(v);
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT, 0, NULL);
		return 0;
	}
	switch (v->kind) {
	case QS_KIND_FILE: return start_file(v, st);
	case QS_KIND_DIR: rc = apply_dir(v); break;
	case QS_KIND_SYMLINK: rc = apply_symlink(v); break;
	default: rc = apply_tombstone(v); break;
	}
	if (rc == 0) {
		send_want(v);
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED, 0, NULL);
	}
	return rc;
}

static int recv_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct recv *v = arg;
	if (v->done)
		return 0;
	if (!v->got_request) {
		v->got_request = true;
		ProtobufCMessage *m;
		const ProtobufCMessageDescriptor *desc =
			v->force ? &quics__force_sync_request__descriptor
				 : &quics__must_sync_request__descriptor;
		int rc = qs_wire_unpack(desc, d, len, NULL, &m);
		if (rc == 0) {
			struct push_req pr;
			if (v->force) {
				const Quics__ForceSyncRequest *f = (const void *)m;
				pr = (struct push_req){f->root_id, f->path, f->version, f->state,
						       NULL};
				qs_info("client",
					"event=force_sync root=%llu path=\"%s\" version=%llu"
					" reason=%d",
					(unsigned long long)f->root_id, f->path,
					(unsigned long long)f->version, (int)f->reason);
			} else {
				const Quics__MustSyncRequest *ms = (const void *)m;
				pr = (struct push_req){ms->root_id, ms->path, ms->version,
						       ms->state, ms};
			}
			rc = on_request(v, &pr);
			qs_wire_free(m);
		}
		if (rc != 0 && v->path != NULL)
			fail(v, rc);
		return rc != 0 && v->path == NULL ? rc : 0;
	}
	const uint8_t *expect = v->next < v->m.count ? v->m.chunks[v->next].sha256 : NULL;
	int rc = expect == NULL ? QS_EPROTO : qs_chunk_rx_header(&v->rx, d, len, expect);
	if (rc != 0)
		fail(v, rc);
	return 0;
}

static int recv_on_data(struct qs_tx *tx, const uint8_t *d, size_t len, uint64_t off,
			uint64_t total, void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct recv *v = arg;
	if (v->done)
		return 0;
	bool complete;
	size_t had = v->rx.data.len; /* progress counts chunk bytes, not (compressed) DATA */
	int rc = qs_chunk_rx_data(&v->rx, d, len, &complete);
	if (rc == 0)
		xfer_add_done(v, v->rx.data.len - had);
	if (rc == 0 && complete) {
		rc = qs_localfile_writer_append(&v->w, v->rx.data.data, v->rx.data.len);
		if (rc == 0) {
			v->next++;
			rc = advance(v);
		}
	}
	if (rc != 0)
		fail(v, rc);
	return 0;
}

/* Whether the part file being written is where v->path's directory is now (the same inode
 * through the root as through the writer's directory fd). */
static bool part_in_place(struct recv *v)
{
	int dfd;
	const char *name;
	struct stat here, there;
	if (open_parent_dir(v, &dfd, &name) != 0)
		return false;
	bool same = fstatat(dfd, v->w.tmp_name, &here, AT_SYMLINK_NOFOLLOW) == 0 &&
		    fstatat(v->w.dir_fd, v->w.tmp_name, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
		    here.st_ino == there.st_ino && here.st_dev == there.st_dev;
	close(dfd);
	return same;
}

static void recv_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct recv *v = arg;
	if (err == QS_ECONN && v->writing && v->resumable && (!part_in_place(v) || superseded(v))) {
		/* Its directory was renamed or removed meanwhile (the writer's directory fd went
		 * along): no attempt will find it where its path says (chaos seed 1003); or a newer
		 * version of the path is recorded already: this one will never be asked for. */
		qs_localfile_writer_abort(&v->w);
		v->writing = false;
	}
	if (err == QS_ECONN && v->writing && v->resumable) {
		/* The next attempt at this version continues from what was written. */
		char part[sizeof(v->w.tmp_name)];
		memcpy(part, v->w.tmp_name, sizeof(part));
		qs_localfile_writer_suspend(&v->w);
		v->writing = false;
		qic_parts_note(v->r, v->path, part);
	}
	recv_free(v);
}

static const struct qs_tx_ops recv_ops = {
	.on_msg = recv_on_msg,
	.on_data = recv_on_data,
	.on_close = recv_on_close,
};

int qic_receive_accept(struct qic_engine *e, struct qs_tx *tx, bool force)
{
	struct recv *v = qs_calloc(1, sizeof(*v));
	if (v == NULL)
		return QS_ENOMEM;
	v->e = e;
	v->force = force;
	v->tx = tx;
	qs_buf_init(&v->enc, (size_t)40 << 20);
	qs_manifest_init(&v->m);
	qs_manifest_init(&v->old);
	qs_chunk_rx_init(&v->rx);
	qs_tx_set_ops(tx, &recv_ops, v);
	return 0;
}
