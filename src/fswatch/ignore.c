/* Ignore rules (see ignore.h, docs/fswatch.md). Each pattern compiles to a short token list
 * that is run as a Thompson automaton over the path's code points (a bit set of live
 * states), so matching is linear in the path for any pattern: no backtracking, no blow-up on
 * "*a*a*a*". Invariants: every rule's tokens, classes and items live in the shared arrays of
 * struct qs_ignore; a rule has 1..QS_IGNORE_LINE_MAX tokens; text handled here (patterns
 * and paths) is valid UTF-8, checked once at the edge. */
#include "fswatch/ignore.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/utf8.h"

enum tok_type {
	TOK_LIT = 0,         /* one code point, '/' included */
	TOK_ANY = 1,         /* "?": one code point other than '/' */
	TOK_CLASS = 2,       /* "[...]": one code point other than '/' in (or not in) a set */
	TOK_STAR = 3,        /* "*": any run of code points other than '/' */
	TOK_DSTAR_SLASH = 4, /* "**" then "/" at a segment start: zero or more whole directories */
	TOK_DSTAR_END = 5,   /* a final "**" at a segment start: anything, '/' included */
};

struct tok {
	uint8_t type;
	uint32_t arg; /* TOK_LIT: the code point; TOK_CLASS: index into classes */
};

enum named_class {
	NC_NONE = 0,
	NC_ALNUM,
	NC_ALPHA,
	NC_BLANK,
	NC_CNTRL,
	NC_DIGIT,
	NC_GRAPH,
	NC_LOWER,
	NC_PRINT,
	NC_PUNCT,
	NC_SPACE,
	NC_UPPER,
	NC_XDIGIT,
};

/* One member of a class: the range [lo, hi], or a named class when named != NC_NONE. */
struct class_item {
	uint32_t lo;
	uint32_t hi;
	uint8_t named;
};

struct class_def {
	uint32_t first_item;
	uint32_t item_count;
	bool negated;
};

/* How a rule is matched: most patterns are a plain name or "*" + a suffix, which a byte
 * comparison decides; the rest run the automaton. */
enum rule_shape {
	SHAPE_NFA = 0,
	SHAPE_LITERAL = 1, /* only literal characters: lit is the whole pattern */
	SHAPE_SUFFIX = 2,  /* unanchored "*" + literals: lit is the suffix */
};

struct rule {
	uint32_t first_tok;
	uint32_t tok_count;
	bool negated;  /* "!pattern": re-includes */
	bool dir_only; /* "pattern/": directories only */
	bool anchored; /* a '/' other than a trailing one: matched against the whole path */
	uint8_t shape;
	uint32_t lit_off; /* SHAPE_LITERAL, SHAPE_SUFFIX: the bytes in lits */
	uint32_t lit_len;
};

struct qs_ignore {
	struct rule *rules;
	size_t rule_count, rule_cap;
	struct tok *toks;
	size_t tok_count, tok_cap;
	struct class_def *classes;
	size_t class_count, class_cap;
	struct class_item *items;
	size_t item_count, item_cap;
	char *lits;
	size_t lits_len, lits_cap;
};

/* Most components a valid path has ("a/a/.../a"), and the automaton's state words. */
#define LEVELS_MAX (QS_PATH_MAX / 2 + 1)
#define STATE_WORDS (QS_IGNORE_LINE_MAX / 64 + 1)

static int push_tok(struct qs_ignore *ig, uint8_t type, uint32_t arg)
{
	int rc = qs_array_reserve((void **)&ig->toks, &ig->tok_cap, ig->tok_count + 1,
				  sizeof(*ig->toks));
	if (rc != 0)
		return rc;
	ig->toks[ig->tok_count++] = (struct tok){type, arg};
	return 0;
}

static int push_item(struct qs_ignore *ig, uint32_t lo, uint32_t hi, uint8_t named)
{
	int rc = qs_array_reserve((void **)&ig->items, &ig->item_cap, ig->item_count + 1,
				  sizeof(*ig->items));
	if (rc != 0)
		return rc;
	ig->items[ig->item_count++] = (struct class_item){lo, hi, named};
	return 0;
}

/* ---- UTF-8 on text already known to be valid ---- */

static uint32_t decode(const unsigned char *s, size_t *n)
{
	if (s[0] < 0x80) {
		*n = 1;
		return s[0];
	}
	if (s[0] < 0xE0) {
		*n = 2;
		return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3Fu);
	}
	if (s[0] < 0xF0) {
		*n = 3;
		return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 |
		       (s[2] & 0x3Fu);
	}
	*n = 4;
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
	       (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3Fu);
}

/* ---- named classes (ASCII, as in the C locale) ---- */

static const char *const class_names[] = {
	"",      "alnum", "alpha", "blank", "cntrl", "digit",  "graph",
	"lower", "print", "punct", "space", "upper", "xdigit",
};

static uint8_t named_class_lookup(const char *s, size_t len)
{
	for (uint8_t i = 1; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
		if (strlen(class_names[i]) == len && memcmp(class_names[i], s, len) == 0)
			return i;
	}
	return NC_NONE;
}

static bool named_class_has(uint8_t named, uint32_t c)
{
	bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
	bool digit = c >= '0' && c <= '9';
	bool graph = c > 0x20 && c < 0x7F;
	switch (named) {
	case NC_ALNUM: return upper || lower || digit;
	case NC_ALPHA: return upper || lower;
	case NC_BLANK: return c == ' ' || c == '\t';
	case NC_CNTRL: return c < 0x20 || c == 0x7F;
	case NC_DIGIT: return digit;
	case NC_GRAPH: return graph;
	case NC_LOWER: return lower;
	case NC_PRINT: return graph || c == ' ';
	case NC_PUNCT: return graph && !upper && !lower && !digit;
	case NC_SPACE: return c == ' ' || (c >= '\t' && c <= '\r');
	case NC_UPPER: return upper;
	case NC_XDIGIT: return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	default: return false;
	}
}

static bool class_has(const struct qs_ignore *ig, const struct class_def *cd, uint32_t c)
{
	if (c == '/')
		return false;
	bool in = false;
	for (uint32_t i = 0; i < cd->item_count && !in; i++) {
		const struct class_item *it = &ig->items[cd->first_item + i];
		in = it->named != NC_NONE ? named_class_has(it->named, c)
					  : c >= it->lo && c <= it->hi;
	}
	return in != cd->negated;
}

/* ---- compiling one pattern ---- */

/* The pattern being compiled: bytes [pos, end) of valid UTF-8. */
struct pat {
	const unsigned char *s;
	size_t pos;
	size_t end;
};

/* Reads one class member character, "\x" escapes included. */
static int class_char(struct pat *p, uint32_t *c)
{
	if (p->s[p->pos] == '\\') {
		p->pos++;
		if (p->pos == p->end)
			return QS_EPROTO;
	}
	size_t n;
	*c = decode(p->s + p->pos, &n);
	p->pos += n;
	return *c == '/' ? QS_EPROTO : 0;
}

/* Reads "[:name:]" at p->pos (which holds "[:"). */
static int class_named(struct qs_ignore *ig, struct pat *p)
{
	size_t start = p->pos + 2;
	for (size_t k = start; k + 1 < p->end; k++) {
		if (p->s[k] != ':' || p->s[k + 1] != ']')
			continue;
		uint8_t named = named_class_lookup((const char *)p->s + start, k - start);
		if (named == NC_NONE)
			return QS_EPROTO;
		p->pos = k + 2;
		return push_item(ig, 0, 0, named);
	}
	return QS_EPROTO;
}

/* Compiles the class starting at p->pos (which holds '[') and pushes its token. */
static int compile_class(struct qs_ignore *ig, struct pat *p)
{
	int rc = qs_array_reserve((void **)&ig->classes, &ig->class_cap, ig->class_count + 1,
				  sizeof(*ig->classes));
	if (rc != 0)
		return rc;
	struct class_def cd = {(uint32_t)ig->item_count, 0, false};
	p->pos++;
	if (p->pos < p->end && (p->s[p->pos] == '!' || p->s[p->pos] == '^')) {
		cd.negated = true;
		p->pos++;
	}
	for (bool first = true;; first = false) {
		if (p->pos == p->end)
			return QS_EPROTO; /* unterminated */
		if (p->s[p->pos] == ']' && !first) {
			p->pos++;
			break;
		}
		if (p->s[p->pos] == '[' && p->pos + 1 < p->end && p->s[p->pos + 1] == ':') {
			rc = class_named(ig, p);
			if (rc != 0)
				return rc;
			continue;
		}
		uint32_t lo, hi;
		rc = class_char(p, &lo);
		if (rc != 0)
			return rc;
		hi = lo;
		if (p->pos + 1 < p->end && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
			p->pos++;
			rc = class_char(p, &hi);
			if (rc != 0)
				return rc;
			if (hi < lo)
				return QS_EPROTO;
		}
		rc = push_item(ig, lo, hi, NC_NONE);
		if (rc != 0)
			return rc;
	}
	cd.item_count = (uint32_t)(ig->item_count - cd.first_item);
	ig->classes[ig->class_count] = cd;
	return push_tok(ig, TOK_CLASS, (uint32_t)ig->class_count++);
}

/* Compiles a run of '*' at p->pos. seg_start: the run begins a segment. */
static int compile_stars(struct qs_ignore *ig, struct pat *p, struct rule *r, bool *seg_start)
{
	size_t run = 0;
	while (p->pos + run < p->end && p->s[p->pos + run] == '*')
		run++;
	p->pos += run;
	if (run >= 2 && *seg_start && p->pos == p->end)
		return push_tok(ig, TOK_DSTAR_END, 0);
	if (run >= 2 && *seg_start && p->s[p->pos] == '/') {
		p->pos++; /* the '/' belongs to the token; the next segment starts here */
		r->anchored = true;
		return push_tok(ig, TOK_DSTAR_SLASH, 0);
	}
	*seg_start = false;
	return push_tok(ig, TOK_STAR, 0);
}

/* Compiles the pattern text into r's tokens. */
static int compile_pattern(struct qs_ignore *ig, struct pat *p, struct rule *r)
{
	bool seg_start = true;
	int rc = 0;
	r->first_tok = (uint32_t)ig->tok_count;
	while (p->pos < p->end && rc == 0) {
		unsigned char c = p->s[p->pos];
		if (c == '*') {
			rc = compile_stars(ig, p, r, &seg_start);
			continue;
		}
		if (c == '?') {
			p->pos++;
			rc = push_tok(ig, TOK_ANY, 0);
		} else if (c == '[') {
			rc = compile_class(ig, p);
		} else {
			if (c == '\\' && ++p->pos == p->end)
				return QS_EPROTO; /* a lone trailing backslash */
			size_t n;
			uint32_t cp = decode(p->s + p->pos, &n);
			p->pos += n;
			rc = push_tok(ig, TOK_LIT, cp);
			if (cp == '/') {
				r->anchored = true;
				seg_start = true;
				continue;
			}
		}
		seg_start = false;
	}
	r->tok_count = (uint32_t)(ig->tok_count - r->first_tok);
	return rc;
}

static size_t encode(uint32_t c, char out[4])
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3F));
	out[2] = (char)(0x80 | (c >> 6 & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* Picks r's shape; for the literal shapes, stores the literal's bytes. */
static int classify(struct qs_ignore *ig, struct rule *r)
{
	const struct tok *t = ig->toks + r->first_tok;
	uint32_t first = 0;
	if (!r->anchored && r->tok_count >= 2 && t[0].type == TOK_STAR)
		first = 1;
	for (uint32_t i = first; i < r->tok_count; i++) {
		if (t[i].type != TOK_LIT)
			return 0; /* SHAPE_NFA */
	}
	size_t need = 4 * (size_t)(r->tok_count - first);
	int rc = qs_array_reserve((void **)&ig->lits, &ig->lits_cap, ig->lits_len + need, 1);
	if (rc != 0)
		return rc;
	r->shape = first == 1 ? SHAPE_SUFFIX : SHAPE_LITERAL;
	r->lit_off = (uint32_t)ig->lits_len;
	for (uint32_t i = first; i < r->tok_count; i++)
		ig->lits_len += encode(t[i].arg, ig->lits + ig->lits_len);
	r->lit_len = (uint32_t)(ig->lits_len - r->lit_off);
	return 0;
}

/* Git's rule: trailing spaces go unless escaped; escapes are read left to right. Returns
 * the new end. */
static size_t trim_trailing_spaces(const unsigned char *s, size_t start, size_t end)
{
	size_t last_space = end;
	for (size_t i = start; i < end; i++) {
		if (s[i] == ' ') {
			if (last_space == end)
				last_space = i;
			continue;
		}
		if (s[i] == '\\' && ++i == end)
			return end;
		last_space = end;
	}
	return last_space;
}

/* Parses one line [start, end) (no line end). Adds a rule unless it is blank or a comment. */
static int parse_line(struct qs_ignore *ig, const unsigned char *s, size_t start, size_t end)
{
	if (end - start > QS_IGNORE_LINE_MAX)
		return QS_E2BIG;
	if (!qs_utf8_valid_nonul(s + start, end - start))
		return QS_EPROTO;
	if (start == end || s[start] == '#')
		return 0;
	end = trim_trailing_spaces(s, start, end);
	if (start == end)
		return 0;
	struct rule r = {0};
	if (s[start] == '!') {
		r.negated = true;
		start++;
	}
	if (end > start && s[end - 1] == '/') {
		r.dir_only = true;
		end--;
	}
	if (end > start && s[start] == '/') {
		r.anchored = true;
		start++;
	}
	if (start == end)
		return QS_EPROTO; /* "!", "/", "!/" */
	if (ig->rule_count == QS_IGNORE_MAX_RULES)
		return QS_E2BIG;
	int rc = qs_array_reserve((void **)&ig->rules, &ig->rule_cap, ig->rule_count + 1,
				  sizeof(*ig->rules));
	if (rc != 0)
		return rc;
	struct pat p = {s, start, end};
	rc = compile_pattern(ig, &p, &r);
	if (rc == 0)
		rc = classify(ig, &r);
	if (rc != 0)
		return rc;
	ig->rules[ig->rule_count++] = r;
	return 0;
}

int qs_ignore_parse(const char *text, size_t len, struct qs_ignore **out,
		    struct qs_ignore_error *err)
{
	size_t line = 0;
	int rc = QS_E2BIG;
	struct qs_ignore *ig = NULL;
	if (len > QS_IGNORE_MAX_BYTES)
		goto out;
	rc = QS_ENOMEM;
	ig = qs_calloc(1, sizeof(*ig));
	if (ig == NULL)
		goto out;
	const unsigned char *s = (const unsigned char *)text;
	size_t pos = 0;
	rc = 0;
	while (pos < len && rc == 0) {
		line++;
		const unsigned char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - s) : len;
		size_t next = nl != NULL ? end + 1 : len;
		if (end > pos && s[end - 1] == '\r')
			end--;
		rc = parse_line(ig, s, pos, end);
		pos = next;
	}
out:
	if (rc != 0) {
		qs_ignore_free(ig);
		if (err != NULL)
			err->line = line;
		return rc;
	}
	*out = ig;
	return 0;
}

void qs_ignore_free(struct qs_ignore *ig)
{
	if (ig == NULL)
		return;
	qs_free(ig->rules);
	qs_free(ig->toks);
	qs_free(ig->classes);
	qs_free(ig->items);
	qs_free(ig->lits);
	qs_free(ig);
}

size_t qs_ignore_rule_count(const struct qs_ignore *ig)
{
	return ig == NULL ? 0 : ig->rule_count;
}

/* ---- matching ---- */

struct nfa {
	const struct qs_ignore *ig;
	const struct tok *t;
	uint32_t n; /* tokens; state n accepts */
	size_t words;
	uint64_t set[STATE_WORDS];
};

static bool bit_get(const uint64_t *set, uint32_t i)
{
	return (set[i / 64] >> (i % 64)) & 1u;
}

static void bit_set(uint64_t *set, uint32_t i)
{
	set[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Adds the states reachable without reading: past a star, past a final "**", and past
 * "**" + "/" when at a segment start. One ascending pass, since they only move forward. */
static void nfa_close(struct nfa *a, bool seg_start)
{
	for (uint32_t i = 0; i < a->n; i++) {
		if (!bit_get(a->set, i))
			continue;
		uint8_t ty = a->t[i].type;
		if (ty == TOK_STAR || ty == TOK_DSTAR_END || (ty == TOK_DSTAR_SLASH && seg_start))
			bit_set(a->set, i + 1);
	}
}

static void nfa_start(struct nfa *a, const struct qs_ignore *ig, const struct rule *r)
{
	a->ig = ig;
	a->t = ig->toks + r->first_tok;
	a->n = r->tok_count;
	a->words = a->n / 64 + 1;
	memset(a->set, 0, a->words * sizeof(a->set[0]));
	bit_set(a->set, 0);
	nfa_close(a, true);
}

/* Advances by code point c. Returns false when no state is left. */
static bool nfa_step(struct nfa *a, uint32_t c)
{
	uint64_t next[STATE_WORDS];
	bool live = false;
	memset(next, 0, a->words * sizeof(next[0]));
	for (size_t w = 0; w < a->words; w++) {
		for (uint64_t bits = a->set[w]; bits != 0; bits &= bits - 1) {
			uint32_t i = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
			if (i == a->n)
				continue;
			const struct tok *t = &a->t[i];
			bool take = false, stay = false;
			switch (t->type) {
			case TOK_LIT: take = c == t->arg; break;
			case TOK_ANY: take = c != '/'; break;
			case TOK_CLASS: take = class_has(a->ig, &a->ig->classes[t->arg], c); break;
			case TOK_STAR: stay = c != '/'; break;
			default: stay = true; break; /* the two "**" forms read anything */
			}
			if (take)
				bit_set(next, i + 1);
			if (stay)
				bit_set(next, i);
			live = live || take || stay;
		}
	}
	memcpy(a->set, next, a->words * sizeof(next[0]));
	nfa_close(a, c == '/');
	return live;
}

static bool nfa_accepts(const struct nfa *a)
{
	return bit_get(a->set, a->n);
}

/* Whether a literal-shaped rule matches the component or path text[0, len). */
static bool literal_matches(const struct qs_ignore *ig, const struct rule *r, const char *text,
			    size_t len)
{
	const char *lit = ig->lits + r->lit_off;
	if (r->shape == SHAPE_LITERAL)
		return len == r->lit_len && memcmp(text, lit, len) == 0;
	return len >= r->lit_len && memcmp(text + len - r->lit_len, lit, r->lit_len) == 0;
}

/* Runs rule r over s[0, len) and sets hit[k] for each level k (component k ends at a '/'
 * or at len) whose prefix the rule matches. Anchored rules see each whole prefix, the
 * others each component alone. */
static void rule_levels(const struct qs_ignore *ig, const struct rule *r, const char *s, size_t len,
			bool *hit)
{
	const unsigned char *u = (const unsigned char *)s;
	if (r->shape != SHAPE_NFA && r->anchored) { /* a literal path: one level can match */
		size_t n = r->lit_len, level = 0;
		if (n > len || memcmp(s, ig->lits + r->lit_off, n) != 0 || (n < len && s[n] != '/'))
			return;
		for (size_t i = 0; i < n; i++)
			level += s[i] == '/';
		hit[level] = true;
		return;
	}
	if (r->shape != SHAPE_NFA) {
		size_t level = 0, start = 0;
		for (size_t i = 0; i <= len; i++) {
			if (i < len && s[i] != '/')
				continue;
			hit[level++] = literal_matches(ig, r, s + start, i - start);
			start = i + 1;
		}
		return;
	}
	struct nfa a;
	size_t level = 0, i = 0;
	bool live = true;
	nfa_start(&a, ig, r);
	while (i <= len) {
		if (i == len || u[i] == '/') {
			hit[level] = live && nfa_accepts(&a);
			if (i == len)
				break;
			level++;
			if (!r->anchored) {
				nfa_start(&a, ig, r);
				live = true;
				i++;
				continue;
			}
		}
		size_t n;
		uint32_t c = decode(u + i, &n);
		live = live && nfa_step(&a, c);
		if (!live && r->anchored)
			return; /* no later prefix can match either */
		i += n;
	}
}

/* Matches rule r against the last component (unanchored) or the whole path (anchored). */
static bool rule_matches_leaf(const struct qs_ignore *ig, const struct rule *r, const char *s,
			      size_t len, size_t name_off)
{
	size_t from = r->anchored ? 0 : name_off;
	if (r->shape != SHAPE_NFA)
		return literal_matches(ig, r, s + from, len - from);
	struct nfa a;
	nfa_start(&a, ig, r);
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = from; i < len;) {
		size_t n;
		if (!nfa_step(&a, decode(u + i, &n)))
			return false;
		i += n;
	}
	return nfa_accepts(&a);
}

static bool builtin_name(const char *name, size_t len)
{
	size_t dir_len = sizeof(QS_IGNORE_STATE_DIR) - 1,
	       tmp_len = sizeof(QS_IGNORE_TEMP_PREFIX) - 1;
	if (len == dir_len && memcmp(name, QS_IGNORE_STATE_DIR, len) == 0)
		return true;
	return len >= tmp_len && memcmp(name, QS_IGNORE_TEMP_PREFIX, tmp_len) == 0;
}

bool qs_ignore_match_leaf(const struct qs_ignore *ig, const struct qs_path *p, bool is_dir)
{
	size_t name_len;
	const char *name = qs_path_name(p, &name_len);
	if (builtin_name(name, name_len))
		return true;
	if (ig == NULL)
		return false;
	size_t name_off = (size_t)(name - p->str);
	for (size_t k = ig->rule_count; k-- > 0;) {
		const struct rule *r = &ig->rules[k];
		if (r->dir_only && !is_dir)
			continue;
		if (rule_matches_leaf(ig, r, p->str, p->len, name_off))
			return !r->negated;
	}
	return false;
}

bool qs_ignore_match(const struct qs_ignore *ig, const struct qs_path *p, bool is_dir)
{
	size_t levels = 0, start = 0;
	for (size_t i = 0; i <= p->len; i++) {
		if (i < p->len && p->str[i] != '/')
			continue;
		if (builtin_name(p->str + start, i - start))
			return true;
		levels++;
		start = i + 1;
	}
	if (ig == NULL)
		return false;
	/* decision[k]: 1 excluded, -1 re-included, 0 no rule matched level k. */
	signed char decision[LEVELS_MAX];
	bool hit[LEVELS_MAX];
	memset(decision, 0, levels);
	for (size_t k = 0; k < ig->rule_count; k++) {
		const struct rule *r = &ig->rules[k];
		memset(hit, 0, levels);
		rule_levels(ig, r, p->str, p->len, hit);
		for (size_t lv = 0; lv < levels; lv++) {
			bool dir = lv + 1 < levels || is_dir;
			if (hit[lv] && (dir || !r->dir_only))
				decision[lv] = r->negated ? -1 : 1;
		}
	}
	for (size_t lv = 0; lv < levels; lv++) {
		if (decision[lv] > 0)
			return true;
	}
	return false;
}
