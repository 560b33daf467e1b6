/* qs-impair's command line: options into a struct qs_impair_config, every number through
 * base/num.h (probabilities through a small checked decimal parser on top of it), and one
 * clear line on stderr for anything wrong. Owns nothing; strings are borrowed from argv. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "impair.h"

const char *const qs_impair_dir_names[QS_IMPAIR_DIRS] = {"c2s", "s2c"};

const struct qs_impair_opt_spec qs_impair_opt_specs[QS_IMPAIR_OPTS] = {
	[QS_IMPAIR_DROP] = {"drop", true, 0, QS_IMPAIR_PPB, 0, "probability a datagram is dropped"},
	[QS_IMPAIR_DUP] = {"dup", true, 0, QS_IMPAIR_PPB, 0,
			   "probability a datagram is sent twice"},
	[QS_IMPAIR_REORDER] = {"reorder", true, 0, QS_IMPAIR_PPB, 0,
			       "probability a datagram is held back"},
	[QS_IMPAIR_CORRUPT] = {"corrupt", true, 0, QS_IMPAIR_PPB, 0,
			       "probability random bits of one random byte are flipped"},
	[QS_IMPAIR_DELAY_MS] = {"delay-ms", false, 0, 60000, 0, "fixed one-way delay in ms"},
	[QS_IMPAIR_JITTER_MS] = {"jitter-ms", false, 0, 60000, 0,
				 "uniform extra delay in [-J, +J] ms (never below 0)"},
	[QS_IMPAIR_RATE_KBIT] = {"rate-kbit", false, 0, 100000000, 0,
				 "bandwidth cap in kbit/s, 0 for none"},
	[QS_IMPAIR_REORDER_GAP] = {"reorder-gap", false, 1, 1000, 3,
				   "a held datagram goes out after this many later ones"},
	[QS_IMPAIR_REORDER_MS] = {"reorder-ms", false, 1, 60000, 50,
				  "... or after this many ms, whichever is first"},
};

int qs_impair_parse_probability(const char *s, uint64_t *out_ppb)
{
	const char *dot = strchr(s, '.');
	size_t int_len = dot != NULL ? (size_t)(dot - s) : strlen(s);
	uint64_t frac = 0;
	if (dot != NULL) {
		const char *digits = dot + 1;
		size_t frac_len = strlen(digits);
		if (frac_len == 0 || frac_len > 9)
			return QS_EINVAL;
		char padded[10];
		memset(padded, '0', 9);
		memcpy(padded, digits, frac_len);
		padded[9] = '\0';
		int rc = qs_parse_u64(padded, QS_IMPAIR_PPB - 1, &frac);
		if (rc != 0)
			return QS_EINVAL;
	}
	char *int_part = qs_strndup(s, int_len);
	if (int_part == NULL)
		return QS_ENOMEM;
	uint64_t whole;
	int rc = qs_parse_u64(int_part, 1, &whole);
	qs_free(int_part);
	if (rc != 0)
		return rc;
	if (whole == 1 && frac != 0)
		return QS_E2BIG;
	*out_ppb = whole * QS_IMPAIR_PPB + frac;
	return 0;
}

int qs_impair_parse_hostport(const char *opt, const char *s, uint64_t min_port,
			     struct sockaddr_storage *out, socklen_t *out_len)
{
	const char *colon = strrchr(s, ':');
	const char *host = s;
	size_t host_len = colon != NULL ? (size_t)(colon - s) : 0;
	bool v6 = s[0] == '[';
	if (v6) {
		if (host_len < 2 || s[host_len - 1] != ']')
			colon = NULL;
		host++;
		host_len -= host_len >= 2 ? 2 : host_len;
	}
	char addr_text[INET6_ADDRSTRLEN];
	if (colon == NULL || host_len == 0 || host_len >= sizeof(addr_text)) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not an address: use IPV4:PORT or [IPV6]:PORT, "
			"e.g. 127.0.0.1:6122 or [::1]:6122\n",
			opt, s);
		return QS_EINVAL;
	}
	memcpy(addr_text, host, host_len);
	addr_text[host_len] = '\0';
	uint64_t port;
	if (qs_parse_u64(colon + 1, 65535, &port) != 0 || port < min_port) {
		fprintf(stderr,
			"qs-impair: %s: port \"%s\" is not a number in [%" PRIu64 ", 65535]\n", opt,
			colon + 1, min_port);
		return QS_EINVAL;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	int ok;
	if (v6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET6, addr_text, &a6->sin6_addr);
		*out_len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET, addr_text, &a4->sin_addr);
		*out_len = sizeof(*a4);
	}
	if (ok != 1) {
		fprintf(stderr, "qs-impair: %s: \"%s\" is not a numeric IP%s address\n", opt,
			addr_text, v6 ? "v6" : "v4");
		return QS_EINVAL;
	}
	*out = ss;
	return 0;
}

void qs_impair_usage(FILE *f)
{
	fprintf(f, "Usage: qs-impair --upstream ADDR:PORT [--listen ADDR:PORT] [options]\n"
		   "Relays UDP datagrams between clients and one server and impairs them.\n"
		   "ADDR:PORT is IPV4:PORT or [IPV6]:PORT; a listen port of 0 picks a free one.\n"
		   "  --listen ADDR:PORT   where clients send to (default 127.0.0.1:0)\n"
		   "  --upstream ADDR:PORT the server (required)\n"
		   "  --seed N             PRNG seed (default 1)\n"
		   "  --port-file PATH     also write the bound port to PATH\n"
		   "  --queue-max N        datagrams queued or held at most (default 4096)\n"
		   "  --max-clients N      clients tracked; the idlest is evicted (default 64)\n"
		   "  --log-level LEVEL    debug, info, warn or error (default warn)\n"
		   "Per direction: --NAME V sets both, --NAME-c2s V and --NAME-s2c V one each:\n");
	for (size_t i = 0; i < QS_IMPAIR_OPTS; i++) {
		const struct qs_impair_opt_spec *sp = &qs_impair_opt_specs[i];
		if (sp->is_probability)
			fprintf(f, "  --%-12s P  %s, P in [0, 1]\n", sp->name, sp->help);
		else
			fprintf(f, "  --%-12s N  %s (default %" PRIu64 ")\n", sp->name, sp->help,
				sp->def);
	}
	fprintf(f,
		"The first line on stdout is \"listening ADDR:PORT\". SIGINT or SIGTERM prints\n"
		"counters (\"stats dir=c2s ...\") and exits; SIGUSR1 prints them and goes on.\n");
}

/* If body starts with name, returns what follows it, else NULL. */
static const char *skip_prefix(const char *body, const char *name)
{
	size_t n = strlen(name);
	return strncmp(body, name, n) == 0 ? body + n : NULL;
}

/* Matches an option name without its dashes ("drop", "drop-c2s") against the
 * per-direction options. On a match writes the option and the directions it sets. */
static bool match_dir_option(const char *name, enum qs_impair_opt *out, bool dirs[QS_IMPAIR_DIRS])
{
	for (size_t i = 0; i < QS_IMPAIR_OPTS; i++) {
		const char *r = skip_prefix(name, qs_impair_opt_specs[i].name);
		if (r == NULL)
			continue;
		bool only[QS_IMPAIR_DIRS] = {false, false};
		for (size_t d = 0; d < QS_IMPAIR_DIRS; d++) {
			if (r[0] == '-' && skip_prefix(r + 1, qs_impair_dir_names[d]) != NULL) {
				only[d] = true;
				r += 1 + strlen(qs_impair_dir_names[d]);
				break;
			}
		}
		if (r[0] != '\0')
			continue;
		bool both = !only[QS_IMPAIR_C2S] && !only[QS_IMPAIR_S2C];
		for (size_t d = 0; d < QS_IMPAIR_DIRS; d++)
			dirs[d] = both || only[d];
		*out = (enum qs_impair_opt)i;
		return true;
	}
	return false;
}

static int parse_dir_value(const char *opt, const struct qs_impair_opt_spec *sp, const char *v,
			   uint64_t *out)
{
	if (sp->is_probability) {
		int rc = qs_impair_parse_probability(v, out);
		if (rc == QS_E2BIG)
			fprintf(stderr,
				"qs-impair: %s: \"%s\" is greater than 1: a probability is "
				"in [0, 1]\n",
				opt, v);
		else if (rc != 0)
			fprintf(stderr,
				"qs-impair: %s: \"%s\" is not a probability: write a decimal "
				"in [0, 1] with at most 9 decimals, e.g. 0.05\n",
				opt, v);
		return rc;
	}
	uint64_t x;
	if (qs_parse_u64(v, sp->max, &x) != 0 || x < sp->min) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not a whole number in [%" PRIu64 ", %" PRIu64
			"]\n",
			opt, v, sp->min, sp->max);
		return QS_EINVAL;
	}
	*out = x;
	return 0;
}

static int parse_count(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t x;
	if (qs_parse_u64(v, max, &x) != 0 || x < min) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not a whole number in [%" PRIu64 ", %" PRIu64
			"]\n",
			opt, v, min, max);
		return QS_EINVAL;
	}
	*out = x;
	return 0;
}

/* Applies one global option (name without dashes) with value v. */
static int apply_global(struct qs_impair_config *cfg, const char *name, const char *v)
{
	char opt[80];
	snprintf(opt, sizeof(opt), "--%s", name);
	if (strcmp(name, "listen") == 0)
		return qs_impair_parse_hostport(opt, v, 0, &cfg->listen_addr, &cfg->listen_len);
	if (strcmp(name, "upstream") == 0) {
		cfg->has_upstream = true;
		return qs_impair_parse_hostport(opt, v, 1, &cfg->upstream_addr, &cfg->upstream_len);
	}
	if (strcmp(name, "seed") == 0)
		return parse_count(opt, v, 0, UINT64_MAX, &cfg->seed);
	if (strcmp(name, "queue-max") == 0)
		return parse_count(opt, v, 1, 1000000, &cfg->queue_max);
	if (strcmp(name, "max-clients") == 0)
		return parse_count(opt, v, 1, 1024, &cfg->max_clients);
	if (strcmp(name, "port-file") == 0) {
		if (v[0] == '\0') {
			fprintf(stderr, "qs-impair: --port-file: the path is empty\n");
			return QS_EINVAL;
		}
		cfg->port_file = v;
		return 0;
	}
	if (strcmp(name, "log-level") == 0) {
		enum qs_log_level level;
		if (qs_log_level_parse(v, &level) != 0) {
			fprintf(stderr,
				"qs-impair: --log-level: \"%s\" is not one of debug, info, "
				"warn, error\n",
				v);
			return QS_EINVAL;
		}
		qs_log_set_level(level);
		return 0;
	}
	fprintf(stderr, "qs-impair: unknown option --%s (see qs-impair --help)\n", name);
	return QS_EINVAL;
}

void qs_impair_config_defaults(struct qs_impair_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg->listen_addr;
	a4->sin_family = AF_INET;
	a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->listen_len = sizeof(*a4);
	cfg->seed = 1;
	cfg->queue_max = 4096;
	cfg->max_clients = 64;
	for (size_t d = 0; d < QS_IMPAIR_DIRS; d++)
		for (size_t i = 0; i < QS_IMPAIR_OPTS; i++)
			cfg->dir[d][i] = qs_impair_opt_specs[i].def;
}

static const char *const global_options[] = {
	"listen", "upstream", "seed", "queue-max", "max-clients", "port-file", "log-level",
};

static bool is_global_option(const char *name)
{
	for (size_t i = 0; i < sizeof(global_options) / sizeof(global_options[0]); i++)
		if (strcmp(name, global_options[i]) == 0)
			return true;
	return false;
}

/* Applies one option, "--name value" or "--name=value", starting at argv[*i]; advances *i
 * past a separate value. Errors: QS_EINVAL after printing why. */
static int parse_option(struct qs_impair_config *cfg, int argc, char **argv, int *i)
{
	const char *body = argv[*i] + 2;
	const char *eq = strchr(body, '=');
	size_t n = eq != NULL ? (size_t)(eq - body) : strlen(body);
	char name[64];
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, body, n);
	name[n] = '\0';
	enum qs_impair_opt o;
	bool dirs[QS_IMPAIR_DIRS];
	bool is_dir_option = match_dir_option(name, &o, dirs);
	if (!is_dir_option && !is_global_option(name)) {
		fprintf(stderr, "qs-impair: unknown option --%s (see qs-impair --help)\n", name);
		return QS_EINVAL;
	}
	const char *value = eq != NULL ? eq + 1 : NULL;
	if (value == NULL && *i + 1 < argc)
		value = argv[++*i];
	if (value == NULL) {
		fprintf(stderr, "qs-impair: option --%s needs a value\n", name);
		return QS_EINVAL;
	}
	if (!is_dir_option)
		return apply_global(cfg, name, value);
	char opt[80];
	snprintf(opt, sizeof(opt), "--%s", name);
	uint64_t x;
	int rc = parse_dir_value(opt, &qs_impair_opt_specs[o], value, &x);
	if (rc != 0)
		return QS_EINVAL;
	for (size_t d = 0; d < QS_IMPAIR_DIRS; d++)
		if (dirs[d])
			cfg->dir[d][o] = x;
	return 0;
}

int qs_impair_parse_args(int argc, char **argv, struct qs_impair_config *cfg)
{
	qs_impair_config_defaults(cfg);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			qs_impair_usage(stdout);
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			fprintf(stderr,
				"qs-impair: unexpected argument \"%s\" (see qs-impair --help)\n",
				arg);
			return QS_EINVAL;
		}
		if (parse_option(cfg, argc, argv, &i) != 0)
			return QS_EINVAL;
	}
	if (!cfg->has_upstream) {
		fprintf(stderr, "qs-impair: --upstream is required (the server, e.g. --upstream "
				"127.0.0.1:6122)\n");
		return QS_EINVAL;
	}
	return 0;
}
