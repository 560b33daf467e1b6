/* Fuzz harness for the ignore rules (fswatch/ignore.h). The input is rule text, optionally
 * followed by a NUL and '\n'-separated paths (a trailing '/' marks a directory). The harness
 * parses the rules with qs_ignore_parse and with a slow parser written here from
 * docs/fswatch.md; both must agree on success or on the error and its line. Then it matches
 * the given paths and paths derived from the patterns (wildcards expanded in several ways)
 * with qs_ignore_match / qs_ignore_match_leaf and with a slow recursive glob matcher (memoized
 * backtracking over the raw pattern text, unlike the library's automaton). Any disagreement
 * aborts. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/path.h"
#include "base/utf8.h"
#include "fswatch/ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The slow reference implementation is the oracle, not the code under test: it carries no
 * coverage instrumentation, so the fuzzer's feedback is the library's alone and the oracle
 * runs at full speed (its instrumented comparisons took most of the time). */
#if defined(__clang__)
#define ORACLE __attribute__((no_sanitize("coverage")))
#else
#define ORACLE
#endif

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* Patterns and paths longer than this are parsed but not matched by the slow matcher. */
#define SLOW_MAX 512
#define MAX_PATHS 400

struct slow_rule {
	const char *pat; /* the pattern text after '!', leading and trailing '/' are removed */
	size_t len;
	bool negated, dir_only, anchored;
};

struct slow_rules {
	struct slow_rule *v;
	size_t n;
	int rc;
	size_t err_line;
};

/* Decodes one UTF-8 character of text known to be valid: the length from the lead byte. */
ORACLE static size_t char_len(unsigned char lead)
{
	if (lead < 0x80)
		return 1;
	if (lead < 0xE0)
		return 2;
	return lead < 0xF0 ? 3 : 4;
}

ORACLE static uint32_t char_value(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
	uint32_t v = u[0] & lead_mask[n];
	for (size_t k = 1; k < n; k++)
		v = v << 6 | (u[k] & 0x3Fu);
	return v;
}

ORACLE static bool named_ok(const char *name, size_t len, uint32_t c, bool *member)
{
	static const char *const names[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
					    "lower", "print", "punct", "space", "upper", "xdigit"};
	static int (*const preds[])(int) = {isalnum, isalpha, isblank, iscntrl, isdigit, isgraph,
					    islower, isprint, ispunct, isspace, isupper, isxdigit};
	for (size_t i = 0; i < 12; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
			*member = c < 0x80 && preds[i]((int)c) != 0;
			return true;
		}
	}
	return false;
}

/* Reads one class character at p[*i] ("\x" escapes). False if malformed or '/'. */
ORACLE static bool class_char(const char *p, size_t plen, size_t *i, uint32_t *c)
{
	if (p[*i] == '\\' && ++*i >= plen)
		return false;
	size_t n = char_len((unsigned char)p[*i]);
	*c = char_value(p + *i, n);
	*i += n;
	return *c != '/';
}

/* Parses the class at p[pi] == '['; writes its end and whether c is a member. False if the
 * class is malformed. */
ORACLE static bool slow_class(const char *p, size_t plen, size_t pi, uint32_t c, size_t *end,
			      bool *in)
{
	size_t i = pi + 1;
	bool neg = false, first = true, hit = false;
	if (i < plen && (p[i] == '!' || p[i] == '^')) {
		neg = true;
		i++;
	}
	for (;; first = false) {
		if (i >= plen)
			return false;
		if (p[i] == ']' && !first) {
			i++;
			break;
		}
		if (p[i] == '[' && i + 1 < plen && p[i + 1] == ':') {
			const char *close = NULL;
			for (size_t k = i + 2; k + 1 < plen && close == NULL; k++)
				close = (p[k] == ':' && p[k + 1] == ']') ? p + k : NULL;
			bool member = false;
			if (close == NULL ||
			    !named_ok(p + i + 2, (size_t)(close - p) - i - 2, c, &member))
				return false;
			hit = hit || member;
			i = (size_t)(close - p) + 2;
			continue;
		}
		uint32_t a, b;
		if (!class_char(p, plen, &i, &a))
			return false;
		b = a;
		if (i + 1 < plen && p[i] == '-' && p[i + 1] != ']') {
			i++;
			if (!class_char(p, plen, &i, &b) || b < a)
				return false;
		}
		hit = hit || (c >= a && c <= b);
	}
	*end = i;
	*in = c != '/' && hit != neg;
	return true;
}

/* True if the pattern text is well formed: classes parse, no lone trailing backslash. */
ORACLE static bool slow_pattern_ok(const char *p, size_t plen)
{
	for (size_t i = 0; i < plen;) {
		if (p[i] == '\\') {
			if (i + 1 == plen)
				return false;
			i += 1 + char_len((unsigned char)p[i + 1]);
		} else if (p[i] == '[') {
			bool in;
			if (!slow_class(p, plen, i, 'x', &i, &in))
				return false;
		} else {
			i += char_len((unsigned char)p[i]);
		}
	}
	return true;
}

/* True if a '/' outside classes (escaped or not) appears: the pattern is anchored. */
ORACLE static bool has_slash(const char *p, size_t plen)
{
	for (size_t i = 0; i < plen;) {
		if (p[i] == '[') {
			bool in;
			CHECK(slow_class(p, plen, i, 'x', &i, &in));
			continue;
		}
		if (p[i] == '\\')
			i++;
		if (p[i] == '/')
			return true;
		i += char_len((unsigned char)p[i]);
	}
	return false;
}

/* Trailing spaces go unless the first of them is escaped by an odd run of backslashes. */
ORACLE static size_t slow_trim(const char *s, size_t len)
{
	size_t end = len;
	while (end > 0 && s[end - 1] == ' ')
		end--;
	if (end == len)
		return len;
	size_t bs = 0;
	while (bs < end && s[end - 1 - bs] == '\\')
		bs++;
	return bs % 2 == 1 ? end + 1 : end;
}

/* Adds the rule on line [s, s+len) or sets rules->rc. */
ORACLE static void slow_line(struct slow_rules *rules, const char *s, size_t len, size_t line)
{
	if (len > QS_IGNORE_LINE_MAX)
		rules->rc = QS_E2BIG;
	else if (!qs_utf8_valid_nonul(s, len))
		rules->rc = QS_EPROTO;
	if (rules->rc != 0 || len == 0 || s[0] == '#') {
		rules->err_line = line;
		return;
	}
	len = slow_trim(s, len);
	if (len == 0)
		return;
	struct slow_rule r = {s, len, false, false, false};
	if (r.pat[0] == '!') {
		r.negated = true;
		r.pat++;
		r.len--;
	}
	if (r.len > 0 && r.pat[r.len - 1] == '/') {
		r.dir_only = true;
		r.len--;
	}
	if (r.len > 0 && r.pat[0] == '/') {
		r.anchored = true;
		r.pat++;
		r.len--;
	}
	if (r.len == 0)
		rules->rc = QS_EPROTO;
	else if (rules->n == QS_IGNORE_MAX_RULES)
		rules->rc = QS_E2BIG;
	else if (!slow_pattern_ok(r.pat, r.len))
		rules->rc = QS_EPROTO;
	rules->err_line = line;
	if (rules->rc != 0)
		return;
	r.anchored = r.anchored || has_slash(r.pat, r.len);
	rules->v[rules->n++] = r;
}

ORACLE static void slow_parse(struct slow_rules *rules, const char *s, size_t len)
{
	rules->n = 0;
	rules->rc = 0;
	rules->err_line = 0;
	if (len > QS_IGNORE_MAX_BYTES) {
		rules->rc = QS_E2BIG;
		return;
	}
	size_t line = 0;
	for (size_t pos = 0; pos < len && rules->rc == 0;) {
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - s) : len;
		size_t n = end - pos;
		if (n > 0 && s[end - 1] == '\r')
			n--;
		slow_line(rules, s + pos, n, ++line);
		pos = nl != NULL ? end + 1 : len;
	}
}

/* ---- the slow matcher: memoized backtracking over the raw pattern ---- */

struct glob {
	const char *p;
	size_t plen;
	const char *t;
	size_t tlen;
	/* (plen + 1) * (tlen + 1) cells, reused from call to call: a cell is known for this
	 * call when it holds gen << 1 | answer (no allocation or clearing per call, which took
	 * most of the harness's time). */
	uint32_t *memo;
	uint32_t gen;
};

ORACLE static bool glob_at(struct glob *g, size_t pi, size_t ti);

ORACLE static bool glob_stars(struct glob *g, size_t pi, size_t ti)
{
	size_t run = 0;
	while (pi + run < g->plen && g->p[pi + run] == '*')
		run++;
	bool seg_start = pi == 0 || g->p[pi - 1] == '/';
	bool at_end = pi + run == g->plen;
	if (run >= 2 && seg_start && at_end)
		return true;
	if (run >= 2 && seg_start && g->p[pi + run] == '/') {
		size_t rest = pi + run + 1;
		if (glob_at(g, rest, ti))
			return true;
		for (size_t k = ti; k < g->tlen; k++) {
			if (g->t[k] == '/' && glob_at(g, rest, k + 1))
				return true;
		}
		return false;
	}
	for (size_t k = ti;; k += char_len((unsigned char)g->t[k])) {
		if (glob_at(g, pi + run, k))
			return true;
		if (k == g->tlen || g->t[k] == '/')
			return false;
	}
}

ORACLE static bool glob_uncached(struct glob *g, size_t pi, size_t ti)
{
	if (pi == g->plen)
		return ti == g->tlen;
	char c = g->p[pi];
	if (c == '*')
		return glob_stars(g, pi, ti);
	if (ti == g->tlen)
		return false;
	size_t tn = char_len((unsigned char)g->t[ti]);
	if (c == '?')
		return g->t[ti] != '/' && glob_at(g, pi + 1, ti + tn);
	if (c == '[') {
		size_t end;
		bool in;
		CHECK(slow_class(g->p, g->plen, pi, char_value(g->t + ti, tn), &end, &in));
		return in && glob_at(g, end, ti + tn);
	}
	if (c == '\\')
		pi++;
	size_t pn = char_len((unsigned char)g->p[pi]);
	return pn == tn && memcmp(g->p + pi, g->t + ti, pn) == 0 && glob_at(g, pi + pn, ti + tn);
}

ORACLE static bool glob_at(struct glob *g, size_t pi, size_t ti)
{
	uint32_t *m = &g->memo[pi * (g->tlen + 1) + ti];
	if (*m >> 1 != g->gen) {
		bool yes = glob_uncached(g, pi, ti);
		m = &g->memo[pi * (g->tlen + 1) + ti];
		*m = g->gen << 1 | (yes ? 1u : 0u);
	}
	return (*m & 1u) != 0;
}

/* Memo cells the slow matcher may still fill for this input, so that inputs with long
 * patterns and deep paths stay fast: no new comparison starts once it has run out. */
static size_t budget_cells;

static uint32_t *memo_cells;
static size_t memo_cap;
static uint32_t memo_gen;

ORACLE static bool glob(const char *p, size_t plen, const char *t, size_t tlen)
{
	size_t cells = (plen + 1) * (tlen + 1);
	budget_cells = budget_cells > cells ? budget_cells - cells : 0;
	if (cells > memo_cap) {
		free(memo_cells);
		memo_cells = calloc(cells, sizeof(*memo_cells));
		CHECK(memo_cells != NULL);
		memo_cap = cells;
		memo_gen = 0;
	}
	if (++memo_gen == 1u << 31) { /* stamps would repeat: start over */
		memset(memo_cells, 0, memo_cap * sizeof(*memo_cells));
		memo_gen = 1;
	}
	struct glob g = {p, plen, t, tlen, memo_cells, memo_gen};
	return glob_at(&g, 0, 0);
}

ORACLE static bool slow_builtin(const char *name, size_t len)
{
	return (len == 6 && memcmp(name, ".quics", 6) == 0) ||
	       (len >= 11 && memcmp(name, ".quics-tmp-", 11) == 0);
}

/* Whether the prefix ending at `end` (component [cstart, end)) is excluded by the rules. */
ORACLE static int slow_level(const struct slow_rules *rules, const char *path, size_t cstart,
			     size_t end, bool is_dir)
{
	int decision = 0;
	for (size_t k = 0; k < rules->n; k++) {
		const struct slow_rule *r = &rules->v[k];
		if (r->dir_only && !is_dir)
			continue;
		size_t from = r->anchored ? 0 : cstart;
		if (glob(r->pat, r->len, path + from, end - from))
			decision = r->negated ? -1 : 1;
	}
	return decision;
}

/* Full decision; *parents_ignored tells whether a parent directory was excluded. */
ORACLE static bool slow_match(const struct slow_rules *rules, const char *path, size_t len,
			      bool is_dir, bool *parents_ignored)
{
	size_t cstart = 0;
	*parents_ignored = false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		bool last = i == len;
		if (slow_builtin(path + cstart, i - cstart) ||
		    slow_level(rules, path, cstart, i, !last || is_dir) > 0) {
			*parents_ignored = !last;
			return true;
		}
		cstart = i + 1;
	}
	return false;
}

/* ---- paths to try ---- */

struct gen {
	uint64_t seed;
	char buf[QS_PATH_MAX + 1];
	size_t len;
};

ORACLE static unsigned pick(struct gen *g, unsigned n)
{
	g->seed = g->seed * 6364136223846793005u + 1442695040888963407u;
	return (unsigned)(g->seed >> 33) % n;
}

ORACLE static void put(struct gen *g, const char *s, size_t n)
{
	if (n <= QS_PATH_MAX - g->len) {
		memcpy(g->buf + g->len, s, n);
		g->len += n;
	}
}

/* Writes one path the pattern might match: each wildcard expanded by a random choice. */
ORACLE static void derive(struct gen *g, const struct slow_rule *r)
{
	static const char *const star[] = {"", "s", "st", "x.y"};
	static const char *const dstar[] = {"", "d/", "d/e/"};
	static const char *const any[] = {"q", "\xc3\xa9", "0"};
	g->len = 0;
	if (!r->anchored && pick(g, 2) == 0)
		put(g, "p/", 2);
	for (size_t i = 0; i < r->len;) {
		char c = r->pat[i];
		if (c == '*') {
			size_t run = 0;
			while (i + run < r->len && r->pat[i + run] == '*')
				run++;
			bool slash = i + run < r->len && r->pat[i + run] == '/';
			const char *s = run >= 2 && slash ? dstar[pick(g, 3)] : star[pick(g, 4)];
			put(g, s, strlen(s));
			i += run + (run >= 2 && slash ? 1 : 0);
		} else if (c == '?') {
			const char *s = any[pick(g, 3)];
			put(g, s, strlen(s));
			i++;
		} else if (c == '[') {
			size_t end;
			bool in;
			CHECK(slow_class(r->pat, r->len, i, 'x', &end, &in));
			size_t at = i + 1 + (r->pat[i + 1] == '!' || r->pat[i + 1] == '^');
			if (r->pat[at] == '\\')
				at++;
			if (pick(g, 2) == 0)
				put(g, "x", 1);
			else
				put(g, r->pat + at, char_len((unsigned char)r->pat[at]));
			i = end;
		} else {
			if (c == '\\')
				i++;
			size_t n = char_len((unsigned char)r->pat[i]);
			put(g, r->pat + i, n);
			i += n;
		}
	}
	if (pick(g, 3) == 0)
		put(g, "/c", 2);
}

static void compare(const struct qs_ignore *ig, const struct slow_rules *rules, const char *s,
		    size_t len, bool is_dir)
{
	struct qs_path p;
	if (len > SLOW_MAX || budget_cells == 0 || qs_path_init(&p, s, len) != 0)
		return;
	bool parents_ignored;
	bool want = slow_match(rules, s, len, is_dir, &parents_ignored);
	CHECK(qs_ignore_match(ig, &p, is_dir) == want);
	if (!parents_ignored)
		CHECK(qs_ignore_match_leaf(ig, &p, is_dir) == want);
	qs_path_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t rules_len = nul != NULL ? (size_t)(nul - text) : size;

	struct slow_rules rules = {calloc(QS_IGNORE_MAX_RULES, sizeof(struct slow_rule)), 0, 0, 0};
	CHECK(rules.v != NULL);
	slow_parse(&rules, text, rules_len);
	struct qs_ignore *ig = NULL;
	struct qs_ignore_error err = {0};
	int rc = qs_ignore_parse(text, rules_len, &ig, &err);
	CHECK(rc == rules.rc);
	if (rc != 0) {
		CHECK(err.line == rules.err_line);
		free(rules.v);
		return 0;
	}
	CHECK(qs_ignore_rule_count(ig) == rules.n);
	bool small = true;
	for (size_t k = 0; k < rules.n; k++)
		small = small && rules.v[k].len <= SLOW_MAX;
	if (small) {
		size_t tried = 0;
		budget_cells = (size_t)32 << 20;
		/* Paths given after the NUL. */
		for (size_t pos = rules_len + 1; pos < size && tried < MAX_PATHS; tried++) {
			const char *nl = memchr(text + pos, '\n', size - pos);
			size_t end = nl != NULL ? (size_t)(nl - text) : size;
			size_t n = end - pos;
			bool dir = n > 0 && text[pos + n - 1] == '/';
			compare(ig, &rules, text + pos, dir ? n - 1 : n, dir);
			pos = end + 1;
		}
		/* Paths derived from the patterns. */
		struct gen g = {size, {0}, 0};
		for (size_t k = 0; k < rules.n && tried < MAX_PATHS; k++) {
			for (int v = 0; v < 4; v++, tried++) {
				derive(&g, &rules.v[k]);
				compare(ig, &rules, g.buf, g.len, false);
				compare(ig, &rules, g.buf, g.len, true);
			}
		}
	}
	qs_ignore_free(ig);
	free(rules.v);
	return 0;
}
