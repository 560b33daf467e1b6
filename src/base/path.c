/* Path rules (docs/paths.md): the validator every path from the network, the disk or the
 * user passes, struct qs_path (only ever made from bytes the validator accepted), the
 * helpers the sync engine needs, and the lexical normalizer for user-typed paths.
 * Invariant: every struct qs_path outside this file holds a heap string that passes
 * qs_path_check. libc only. */
#include "base/path.h"

#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/utf8.h"

/* Checks the character starting at u[0] (not '/') and writes its length in bytes. */
static int check_char(const unsigned char *u, size_t avail, size_t *n)
{
	if (u[0] == 0)
		return QS_EPATH_NUL;
	if (u[0] < 0x20 || u[0] == 0x7F)
		return QS_EPATH_CONTROL;
	if (u[0] == '\\')
		return QS_EPATH_BACKSLASH;
	if (u[0] < 0x80) {
		*n = 1;
		return 0;
	}
	size_t len = qs_utf8_sequence(u, avail);
	if (len == 0)
		return QS_EPATH_UTF8;
	if (len == 2 && u[0] == 0xC2 && u[1] < 0xA0)
		return QS_EPATH_CONTROL; /* C1 controls U+0080-U+009F, e.g. U+009B (CSI) */
	*n = len;
	return 0;
}

/* Checks a whole component once its end is known. */
static int check_name(const char *name, size_t len)
{
	if (len == 0)
		return QS_EPATH_EMPTY_NAME;
	if (len == 1 && name[0] == '.')
		return QS_EPATH_DOT;
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return QS_EPATH_DOTDOT;
	return 0;
}

static bool is_ascii_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int qs_path_check(const char *s, size_t len)
{
	if (len == 0)
		return QS_EPATH_EMPTY;
	if (len > QS_PATH_MAX)
		return QS_EPATH_TOO_LONG;
	if (s[0] == '/' || (len >= 2 && is_ascii_letter(s[0]) && s[1] == ':'))
		return QS_EPATH_ABSOLUTE;
	const unsigned char *u = (const unsigned char *)s;
	size_t name_start = 0, i = 0;
	while (i < len) {
		int rc;
		if (u[i] == '/') {
			rc = check_name(s + name_start, i - name_start);
			if (rc != 0)
				return rc;
			name_start = ++i;
			continue;
		}
		size_t n = 0;
		rc = check_char(u + i, len - i, &n);
		if (rc != 0)
			return rc;
		i += n;
		if (i - name_start > QS_PATH_NAME_MAX)
			return QS_EPATH_NAME_TOO_LONG;
	}
	return check_name(s + name_start, len - name_start);
}

/* Takes ownership of the heap string s (len bytes + NUL) once it passes the rules. */
static int adopt_checked(struct qs_path *p, char *s, size_t len)
{
	int rc = qs_path_check(s, len);
	if (rc != 0) {
		qs_free(s);
		return rc;
	}
	p->str = s;
	p->len = len;
	return 0;
}

int qs_path_init(struct qs_path *p, const char *s, size_t len)
{
	int rc = qs_path_check(s, len);
	if (rc != 0)
		return rc;
	char *copy = qs_strndup(s, len);
	if (copy == NULL)
		return QS_ENOMEM;
	p->str = copy;
	p->len = len;
	return 0;
}

int qs_path_copy(struct qs_path *dst, const struct qs_path *src)
{
	char *copy = qs_strndup(src->str, src->len);
	if (copy == NULL)
		return QS_ENOMEM;
	dst->str = copy;
	dst->len = src->len;
	return 0;
}

void qs_path_release(struct qs_path *p)
{
	qs_free(p->str);
	p->str = NULL;
	p->len = 0;
}

int qs_path_join(struct qs_path *out, const struct qs_path *parent, const char *rel, size_t rel_len)
{
	if (parent == NULL)
		return qs_path_init(out, rel, rel_len);
	/* Both lengths are at most QS_PATH_MAX once the first test passes: no overflow. */
	if (rel_len > QS_PATH_MAX || parent->len + 1 + rel_len > QS_PATH_MAX)
		return QS_EPATH_TOO_LONG;
	size_t len = parent->len + 1 + rel_len;
	char *s = qs_malloc(len + 1);
	if (s == NULL)
		return QS_ENOMEM;
	memcpy(s, parent->str, parent->len);
	s[parent->len] = '/';
	if (rel_len > 0)
		memcpy(s + parent->len + 1, rel, rel_len);
	s[len] = '\0';
	return adopt_checked(out, s, len);
}

/* Offset of the last component of p: one past its last '/', or 0. */
static size_t name_offset(const struct qs_path *p)
{
	size_t i = p->len;
	while (i > 0 && p->str[i - 1] != '/')
		i--;
	return i;
}

int qs_path_parent(struct qs_path *out, const struct qs_path *p)
{
	size_t off = name_offset(p);
	if (off == 0)
		return QS_ENOENT;
	/* A prefix of a valid path that ends before a '/' is itself valid. */
	char *s = qs_strndup(p->str, off - 1);
	if (s == NULL)
		return QS_ENOMEM;
	assert(qs_path_check(s, off - 1) == 0);
	out->str = s;
	out->len = off - 1;
	return 0;
}

const char *qs_path_name(const struct qs_path *p, size_t *len)
{
	size_t off = name_offset(p);
	*len = p->len - off;
	return p->str + off;
}

bool qs_path_str_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool qs_path_is_inside(const struct qs_path *p, const struct qs_path *dir)
{
	if (dir == NULL)
		return true;
	return p->len > dir->len && memcmp(p->str, dir->str, dir->len) == 0 &&
	       p->str[dir->len] == '/';
}

bool qs_path_equal(const struct qs_path *a, const struct qs_path *b)
{
	return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

int qs_path_cmp(const struct qs_path *a, const struct qs_path *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->str, b->str, n);
	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

/* The normalizer keeps the resolved components of an absolute path as a stack of spans
 * pointing into the caller's strings. */
struct span {
	const char *p;
	size_t len;
};

struct span_stack {
	struct span *v;
	size_t n;
	size_t cap;
};

/* Most components a string of len bytes can hold: each takes a byte and a separator. */
static size_t max_components(size_t len)
{
	return len / 2 + 1;
}

/* Pushes the components of s onto st: empty and "." components vanish, ".." pops (and
 * stays at the top, like "/.." == "/"). */
static void resolve_into(struct span_stack *st, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == '/')
			i++;
		size_t start = i;
		while (i < len && s[i] != '/')
			i++;
		size_t n = i - start;
		if (n == 0 || (n == 1 && s[start] == '.'))
			continue;
		if (n == 2 && s[start] == '.' && s[start + 1] == '.') {
			if (st->n > 0)
				st->n--;
			continue;
		}
		assert(st->n < st->cap);
		st->v[st->n].p = s + start;
		st->v[st->n].len = n;
		st->n++;
	}
}

/* Checks that path starts with every component of root and has more. */
static int check_below(const struct span_stack *root, const struct span_stack *path)
{
	if (path->n < root->n)
		return QS_EPATH_OUTSIDE;
	for (size_t i = 0; i < root->n; i++) {
		const struct span *a = &root->v[i], *b = &path->v[i];
		if (a->len != b->len || memcmp(a->p, b->p, a->len) != 0)
			return QS_EPATH_OUTSIDE;
	}
	return path->n == root->n ? QS_EPATH_EMPTY : 0;
}

/* Joins n spans with '/' into a checked path. */
static int spans_to_path(struct qs_path *out, const struct span *v, size_t n)
{
	size_t len = n - 1; /* separators; n >= 1 here */
	for (size_t i = 0; i < n; i++) {
		len += v[i].len;
		if (len > QS_PATH_MAX)
			return QS_EPATH_TOO_LONG;
	}
	char *s = qs_malloc(len + 1);
	if (s == NULL)
		return QS_ENOMEM;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			s[off++] = '/';
		memcpy(s + off, v[i].p, v[i].len);
		off += v[i].len;
	}
	s[len] = '\0';
	return adopt_checked(out, s, len);
}

int qs_path_normalize(struct qs_path *out, const char *root, const char *cwd, const char *typed)
{
	size_t root_len = strnlen(root, QS_PATH_INPUT_MAX + 1);
	size_t cwd_len = strnlen(cwd, QS_PATH_INPUT_MAX + 1);
	size_t typed_len = strnlen(typed, QS_PATH_INPUT_MAX + 1);
	if (root_len > QS_PATH_INPUT_MAX || cwd_len > QS_PATH_INPUT_MAX ||
	    typed_len > QS_PATH_INPUT_MAX)
		return QS_EPATH_TOO_LONG;
	if (root[0] != '/' || cwd[0] != '/')
		return QS_EINVAL;
	if (typed_len == 0)
		return QS_EPATH_EMPTY;

	struct span_stack r = {NULL, 0, max_components(root_len)};
	struct span_stack p = {NULL, 0, max_components(cwd_len) + max_components(typed_len)};
	int rc;
	struct span *v = qs_calloc(r.cap + p.cap, sizeof(*v));
	if (v == NULL)
		return QS_ENOMEM;
	r.v = v;
	p.v = v + r.cap;
	resolve_into(&r, root, root_len);
	if (typed[0] != '/')
		resolve_into(&p, cwd, cwd_len);
	resolve_into(&p, typed, typed_len);
	rc = check_below(&r, &p);
	if (rc != 0)
		goto out;
	rc = spans_to_path(out, p.v + r.n, p.n - r.n);
out:
	qs_free(v);
	return rc;
}
