/* Root-relative paths: the rules every path from the network, the disk or the user must pass
 * (docs/paths.md), and struct qs_path, a heap string that is made only by those rules, so code
 * beyond the edge can trust any struct qs_path it is handed. libc only, no I/O, thread-safe
 * (no shared state). */
#ifndef QS_BASE_PATH_H
#define QS_BASE_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define QS_PATH_MAX 4096     /* bytes in a whole path, without the terminating NUL */
#define QS_PATH_NAME_MAX 255 /* bytes in one component */
/* Bytes accepted in each string given to qs_path_normalize (root, cwd, typed). */
#define QS_PATH_INPUT_MAX 65536

/* A validated root-relative path: `str` is a heap copy of `len` bytes (plus a NUL) that
 * passed qs_path_check. Read the fields, never write them. Made only by qs_path_init,
 * qs_path_copy, qs_path_join, qs_path_parent and qs_path_normalize; released with
 * qs_path_release. The root itself is not a qs_path: where a directory argument may be
 * the root, the functions below take NULL for it. */
struct qs_path {
	char *str;
	size_t len;
};

/* Checks that the len bytes at s are a valid root-relative path. Allocates nothing.
 * Returns 0 or exactly one code, chosen in this order:
 *   QS_EPATH_EMPTY (len 0), QS_EPATH_TOO_LONG (len > QS_PATH_MAX),
 *   QS_EPATH_ABSOLUTE (starts with '/' or a drive letter such as "C:"),
 *   then the first problem reading left to right: QS_EPATH_NUL, QS_EPATH_CONTROL (U+0000-U+001F,
 *   U+007F-U+009F), QS_EPATH_BACKSLASH, QS_EPATH_UTF8 (malformed, truncated, overlong,
 *   surrogate, above U+10FFFF), QS_EPATH_NAME_TOO_LONG (a component > QS_PATH_NAME_MAX),
 *   QS_EPATH_EMPTY_NAME ("a//b", "a/"), QS_EPATH_DOT, QS_EPATH_DOTDOT. */
int qs_path_check(const char *s, size_t len);

/* Validates len bytes at s (borrowed) and stores a copy in *p. *p is written only on
 * success; release it with qs_path_release. Errors: those of qs_path_check, QS_ENOMEM. */
int qs_path_init(struct qs_path *p, const char *s, size_t len);

/* Stores a copy of src in *dst. Errors: QS_ENOMEM. */
int qs_path_copy(struct qs_path *dst, const struct qs_path *src);

/* Frees the string; *p is empty afterwards (str NULL, len 0). NULL-safe and repeatable. */
void qs_path_release(struct qs_path *p);

/* Stores parent + "/" + rel in *out (just rel when parent is NULL, the root). rel (borrowed,
 * rel_len bytes) is usually one name but may be several components; the whole result must
 * pass qs_path_check, so a bad rel gives the code of the problem it makes (e.g. "" gives
 * QS_EPATH_EMPTY_NAME after a parent). Errors: those of qs_path_check, QS_ENOMEM. */
int qs_path_join(struct qs_path *out, const struct qs_path *parent, const char *rel,
		 size_t rel_len);

/* Stores the parent directory of p in *out ("a/b/c" -> "a/b"). Errors: QS_ENOENT when p has
 * one component (its parent is the root, which is not a qs_path), QS_ENOMEM. */
int qs_path_parent(struct qs_path *out, const struct qs_path *p);

/* Returns the last component of p (borrowed from p->str, not NUL-terminated) and writes
 * its length to *len. */
const char *qs_path_name(const struct qs_path *p, size_t *len);

/* True if p lies strictly below dir ("a/b" is inside "a"; "a" is not inside "a"; "ab" is
 * not inside "a"). dir NULL means the root, which contains every path. */
bool qs_path_is_inside(const struct qs_path *p, const struct qs_path *dir);
/* The same on root-relative path strings, with dir itself included: true if path equals dir
 * or lies below it. */
bool qs_path_str_within(const char *path, const char *dir);

bool qs_path_equal(const struct qs_path *a, const struct qs_path *b);
/* Byte order (memcmp, shorter prefix first): a parent sorts before its children. Returns
 * <0, 0 or >0. */
int qs_path_cmp(const struct qs_path *a, const struct qs_path *b);

/* Resolves what a user typed into a root-relative path, lexically (symlinks are not
 * followed: there is no I/O here). root and cwd are absolute local paths; typed is
 * absolute or relative to cwd. '.', '..', repeated and trailing '/' are resolved in all
 * three; ".." at "/" stays at "/". All are NUL-terminated and borrowed. On success *out
 * holds the path below root. Errors: QS_EINVAL (root or cwd not absolute),
 * QS_EPATH_TOO_LONG (an input longer than QS_PATH_INPUT_MAX, or the result longer than
 * QS_PATH_MAX), QS_EPATH_EMPTY (typed is empty or names the root itself),
 * QS_EPATH_OUTSIDE (the result is not below root), the codes of qs_path_check for the
 * result, QS_ENOMEM. */
int qs_path_normalize(struct qs_path *out, const char *root, const char *cwd, const char *typed);

#endif
