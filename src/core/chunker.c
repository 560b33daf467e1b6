/* Content-defined chunker (see chunker.h and docs/chunker.md). Owns one SHA-256 state per
 * stream and nothing else: chunk bytes are hashed as they pass and never copied. Invariant:
 * len_bytes < max_bytes between calls, and the boundary rule only ever looks at the last
 * QS_CHUNKER_WINDOW_BYTES bytes and the length of the current chunk, so boundaries do not
 * depend on how the stream is split into feeds. */
#include "core/chunker.h"

#include <assert.h>

#include "base/err.h"

const struct qs_chunker_params qs_chunker_default_params = {
	.min_bytes = QS_CHUNKER_MIN_BYTES,
	.avg_bytes = QS_CHUNKER_AVG_BYTES,
	.max_bytes = QS_CHUNKER_MAX_BYTES,
};

/* Normalization level (FastCDC): the strict mask has log2(avg) + 2 bits, the loose one
 * log2(avg) - 2, which concentrates chunk sizes around avg. */
#define CHUNKER_NORMALIZATION 2

/* Feeds are processed in blocks this size when hashing, so SHA-256 reads bytes the gear
 * scan has just brought into cache. */
#define CHUNKER_BLOCK_BYTES ((size_t)64 * 1024)

/* gear[i] is the i-th output (i = 0..255) of splitmix64 seeded with 0x51554943532d4344
 * (ASCII "QUICS-CD"): state += 0x9e3779b97f4a7c15; z = state;
 * z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb;
 * output z ^ z >> 31. Fixed forever: chunker_test.c regenerates and compares it. */
const uint64_t qs_chunker_gear[256] = {
	0x68a16f762f302699u, 0xd369fb319ab8e665u, 0x625c18fd3cb22c5au, 0x974f5e6a228e114fu,
	0x82330853342a4ee1u, 0x7db19a8d4ad1d7b1u, 0xab5ddae97355b232u, 0x2546742e3c50a11bu,
	0xc9603146dc093bccu, 0xbe2db368facfa225u, 0xacb00fd859f9c78du, 0x66d3994a7497389eu,
	0x7e2be2022c702592u, 0x69463102a1071031u, 0xf8328fc91ac1551au, 0x636add7a79686e60u,
	0x8d5109764c93f908u, 0x9d8102c7d5e7db9fu, 0x19022359c3febf5au, 0xdab514c3c1f18ee2u,
	0x2bca7fb940ec6a5bu, 0x3307e28157ff671fu, 0xcc9f67ec83bf5a7eu, 0xc8236407af7df4b7u,
	0xa59c7b2eb404f34du, 0x659da2af190186d1u, 0xc2f06f780a9cbd6fu, 0xba7f3e1c2721c10bu,
	0x728c93a1a0f812ceu, 0x940c9cdc63370585u, 0xc8fbf2ab5f6444d2u, 0x5231f31a6f7e366au,
	0x377cf4b0a3bccb3fu, 0x7b1a8bbb8b72c66cu, 0xa566efa5ffdbaa47u, 0xdf8d44fb17a0ec87u,
	0x20791311eb5d920bu, 0x44955fc3ecdeff16u, 0x89597f71e2183e0eu, 0xb98f20d3df8225d9u,
	0x8495c27d5d8915c5u, 0x10707c573d01281cu, 0xe185a77d07906b42u, 0x54343e7456a15158u,
	0xc2fc29e11e159bb3u, 0x213f85d54b2a4c69u, 0x30cfbb59723b0992u, 0xba5cac3333a7d446u,
	0x63649114136b2ae5u, 0xd963542d2b37c6e8u, 0x4b4fead61703c4f6u, 0xa0d85e3c855c6c88u,
	0xda19c0cb4875b3acu, 0x55d61cfb595c64e1u, 0x0646a45e1d5e2329u, 0xec97e391851ed937u,
	0xbe3c43b54f1b1161u, 0x3940222de3215febu, 0x20c5dc552e8305b0u, 0x5f8c3b05ca2927aau,
	0x7d7b8152f402e5bfu, 0xc43e2f4d4b3aaa7du, 0x9877d45448d044ebu, 0x046d1302fb713101u,
	0xad664b704217993fu, 0x172e101b38a32340u, 0x59af4353464539a6u, 0xe9d0301a0d78529du,
	0xa83ec695a2adecd0u, 0xe507bd26b2a518fdu, 0x6d7b1264a260f701u, 0x784f178577b8a456u,
	0xb1811eb262e276b7u, 0x3e8c2135bf0f75b5u, 0x9d97f07bb4e30c74u, 0xc0bbc966c5766c72u,
	0xd307cd8f3030ee84u, 0xb72b31d733f6a0beu, 0xcbdb80bde8227dceu, 0x890bf443d006b47eu,
	0xabca6fc1065ec6dcu, 0xa636e00abf661f76u, 0x60527fc12014ab73u, 0x173da4af322a8368u,
	0x75af84df944686a2u, 0xb99356d2dfbf6ed0u, 0x7481a6dc70d3ad31u, 0x40ab7436c0c4646eu,
	0x20a46d5cb7cbc5d5u, 0x01cdd9276a00256cu, 0x773d0509b4286e85u, 0xf9a8e92beaecd93au,
	0xd70eb576145cd828u, 0x172a6b37db2023d5u, 0x89897e7e1304c00du, 0xba70570e41b313fbu,
	0x91aafe57ff30dd65u, 0x975adb8d51d0ab34u, 0x173e85e92b86d1f6u, 0xf335b8555f1ed9d5u,
	0xe1adeace46ba86c6u, 0x0ec1c3ce840b8376u, 0x64c3c92a9dd2599du, 0xaac97ddcc9586a64u,
	0x8ee45c7a1af7023fu, 0x68de3745fed1d004u, 0x388329b84c56ccd8u, 0xad46eeea05dd374bu,
	0x64284e13808ec86fu, 0xdfb8037d5b6261e0u, 0x8fadd7ef65558aadu, 0x87805609ff7c738au,
	0x40889fd062bd8967u, 0xb7cdc72684a58804u, 0x5b07450d2a23cab8u, 0x6f638b9d4a50159au,
	0x0f64cdf2d3dbbbd5u, 0x5b9a413f135788dbu, 0x2ed1c21fb4945e9cu, 0xafa763dba307e907u,
	0x894827e2680a5d6fu, 0x1fd54c9a44a6c11fu, 0x18587071a590d484u, 0xaca8a8759f78dda5u,
	0x8d60c8bf4234a5a5u, 0xb5849177efa5b3e4u, 0xef86037bf1d72cdau, 0xd8f2d345c78ff9b9u,
	0x1cd9d01402659186u, 0x75c8a7655bcc31b7u, 0xa3f12f9b2b366c98u, 0x27c25ae4243d7ffbu,
	0x2ac21a32cdb9e70eu, 0xe9c15a77c2b0b0b3u, 0xf454aa6adbbb1141u, 0xf686988e2c082e75u,
	0x64b2d455634371a0u, 0x0d0e2b1251f2d383u, 0x20c4505a810df496u, 0x45b8eed72dfca72cu,
	0xe30da8c65fb238ccu, 0x15b2ea98703709e6u, 0x455629273e13deccu, 0x838507deb4af98e2u,
	0xb53ef26603888d23u, 0x7e6288369ad1a2c0u, 0xc3240e576721e561u, 0x5e6a5accca10e4bfu,
	0x0ba48f4f97087649u, 0x62b5a1d4835bd980u, 0x46136fd5d80aa6f8u, 0x8eff4ada5b691c88u,
	0x3a67d30adea8fe95u, 0xc03ad4c3a0d6aecfu, 0xcf9e090d67ce1d98u, 0x5d5f6088d6ebb504u,
	0xcc648cff3524f159u, 0xcfc49c53fb270cafu, 0xa7aa129eb6553187u, 0x5cdffdb38048adfdu,
	0x01c9a176ffe27be2u, 0x33bd4ea2764dafeeu, 0x73c14f5f53f14464u, 0x942bacea0d885d5fu,
	0xe592b47c2afe612fu, 0x5d45f43a64ffb2d6u, 0x0a8032c4f6907bfbu, 0x8629c043e0aba46eu,
	0xf4537c341509ba9fu, 0x911b6136fc29b70du, 0xb454e4deec754f41u, 0x06b36d32a026e711u,
	0x2d44f96ca158bea9u, 0xf59f5b54ca9f17d8u, 0xd6fb9803a5f3252cu, 0x48ba3b2f0f6eec68u,
	0xca6f356d27e3ccb5u, 0x18256809eb8f8887u, 0x7f7e9464918e9682u, 0xfc932cf3661372e7u,
	0x287236378bc4bf13u, 0x51c9865b722b8977u, 0xdca7f9ba72e0b200u, 0x709bd4ec64daf6b1u,
	0xa9581245f8ea908fu, 0xe531d166d16a443du, 0xec62885367876f97u, 0xd9478504241252b4u,
	0x63817147d2ca1e3eu, 0xbb568d8950294a53u, 0x6004e0cdd576f8cbu, 0x0faf1f86a0a5bd20u,
	0x20b8a5f00acce09bu, 0xa58cec654700a34eu, 0xa562a12a2c71c810u, 0x00778f70b0bb7723u,
	0x10e64284dd765045u, 0x431aa3ad949f1fcfu, 0x2b97fc1897c83a8du, 0xe4d4fadd9107e245u,
	0xc60bd3f93682fe8cu, 0x46919a3b98e67c98u, 0xc370a6e95c99c687u, 0x690cf4ee088a61d3u,
	0x99973a6008ee784fu, 0x514a09249410b7d4u, 0xfe26dbacdc20833du, 0x90f52edfdf5e4789u,
	0x1abf697f672d2f8cu, 0x6657db8106bb466du, 0x11988409f84b35e6u, 0xaee763398ef3e944u,
	0x1eca245060d52e3fu, 0xf124657869e06c8fu, 0xd56da655af3fb327u, 0x928dab5ccc052d9du,
	0x6293cedecf840ec3u, 0x92934061192c0ff1u, 0x11715af32a684b6fu, 0xde671bf7d7026d5du,
	0xd3241061d7fbedccu, 0xfc973f5227646142u, 0x7c51a58f49e77b7fu, 0x26356818290c19d3u,
	0x0a2d7af0c5610621u, 0x44bf55d133c00bc7u, 0x463640c0c77a1a65u, 0xee6f6bc8b529531fu,
	0x40093bb69e0ebb6cu, 0x9cc3190ca14572f4u, 0x7a96b0ba735da317u, 0xcef10ef9f4e4d907u,
	0x9fa365fd2993214fu, 0xe5475f6f9c195ab8u, 0x0bfca756fe60852fu, 0x8eb0c6bc30e81e37u,
	0xc8a71e829bf2eb3fu, 0x2b52d0671f1e58bfu, 0x4e0a80465854b563u, 0x76bc49b68bea8fecu,
	0x544faf6f2080b82cu, 0xea741b4a981b3824u, 0xda07a56473567789u, 0x36beedb925473c14u,
	0xcec5d78564097c07u, 0x2077a47cc3559540u, 0x13c5d1fe8f5a0f6eu, 0x7c4de6c78a364855u,
	0x8a89724a2fb8042bu, 0xe15e407cc7f234e1u, 0xbf56322ea1638abcu, 0x95c404d612ab372fu,
	0x6e6a83917cdf3009u, 0x0394a3d956d71d26u, 0x8dec0459e13a9e4au, 0xcd8c2990fab9ab28u,
};

/* Number of the lowest set bit of a power of two. */
static unsigned chunker_log2(size_t v)
{
	unsigned n = 0;
	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

bool qs_chunker_params_valid(const struct qs_chunker_params *p)
{
	if (p == NULL || p->min_bytes < QS_CHUNKER_WINDOW_BYTES || p->avg_bytes < p->min_bytes ||
	    p->max_bytes < p->avg_bytes || p->max_bytes > UINT32_MAX)
		return false;
	if ((p->avg_bytes & (p->avg_bytes - 1)) != 0)
		return false;
	unsigned bits = chunker_log2(p->avg_bytes);
	return bits >= 1 + CHUNKER_NORMALIZATION && bits + CHUNKER_NORMALIZATION <= 63;
}

/* The boundary rule, derived from params. Masks select the top bits of the gear hash:
 * bit k of the hash depends on the last k + 1 bytes, so the top bits see the whole
 * window. */
struct chunker_rule {
	size_t min_bytes, avg_bytes, max_bytes;
	uint64_t mask_strict, mask_loose;
};

static void chunker_rule_init(struct chunker_rule *r, const struct qs_chunker_params *p)
{
	unsigned bits = chunker_log2(p->avg_bytes);
	r->min_bytes = p->min_bytes;
	r->avg_bytes = p->avg_bytes;
	r->max_bytes = p->max_bytes;
	r->mask_strict = ~(uint64_t)0 << (64 - (bits + CHUNKER_NORMALIZATION));
	r->mask_loose = ~(uint64_t)0 << (64 - (bits - CHUNKER_NORMALIZATION));
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Rolls n bytes into the gear hash without testing for a boundary. */
static uint64_t gear_roll(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h << 1) + qs_chunker_gear[p[i]];
	return h;
}

/* Rolls bytes into *hp until the hash has no bit of mask set: returns the number of bytes
 * up to and including that one, or 0 if none of the n bytes ends a chunk. The hot loop. */
static size_t gear_find(uint64_t *hp, const uint8_t *p, size_t n, uint64_t mask)
{
	uint64_t h = *hp;
	for (size_t i = 0; i < n; i++) {
		h = (h << 1) + qs_chunker_gear[p[i]];
		if ((h & mask) == 0) {
			*hp = h;
			return i + 1;
		}
	}
	*hp = h;
	return 0;
}

/* Advances a chunk that has `done` bytes by up to n bytes of p. Returns how many bytes
 * belong to the chunk and sets *cut when the chunk ends after them. A chunk of length L
 * ends where the hash after its last byte has no bit of mask_strict set (min <= L <= avg)
 * or of mask_loose (avg < L < max), or at L == max. The first min - WINDOW bytes of a
 * chunk are not hashed at all: only the WINDOW bytes before the first possible boundary
 * matter, and rolling them from any starting value gives the same hash. */
static size_t chunker_step(const struct chunker_rule *r, uint64_t *hp, size_t done,
			   const uint8_t *p, size_t n, bool *cut)
{
	size_t skip_end = r->min_bytes - QS_CHUNKER_WINDOW_BYTES;
	size_t k, found;
	assert(done < r->max_bytes && n > 0);
	if (done < skip_end) {
		k = min_size(n, skip_end - done);
	} else if (done < r->min_bytes - 1) {
		k = min_size(n, r->min_bytes - 1 - done);
		*hp = gear_roll(*hp, p, k);
	} else {
		bool strict = done < r->avg_bytes;
		k = min_size(n, (strict ? r->avg_bytes : r->max_bytes) - done);
		found = gear_find(hp, p, k, strict ? r->mask_strict : r->mask_loose);
		if (found != 0) {
			*cut = true;
			return found;
		}
	}
	*cut = done + k == r->max_bytes;
	return k;
}

int qs_chunker_scan(const struct qs_chunker_params *params, const uint8_t *data, size_t len,
		    size_t *chunk_len)
{
	if (!qs_chunker_params_valid(params))
		return QS_EINVAL;
	struct chunker_rule r;
	chunker_rule_init(&r, params);
	uint64_t h = 0;
	size_t done = 0;
	bool cut = false;
	while (done < len && !cut)
		done += chunker_step(&r, &h, done, data + done, len - done, &cut);
	*chunk_len = done;
	return 0;
}

int qs_chunker_init(struct qs_chunker *c, const struct qs_chunker_params *params, qs_chunk_fn fn,
		    void *arg)
{
	if (!qs_chunker_params_valid(params) || fn == NULL)
		return QS_EINVAL;
	struct chunker_rule r;
	chunker_rule_init(&r, params);
	struct qs_sha256 sha;
	if (qs_sha256_init(&sha) != 0)
		return QS_ENOMEM;
	c->min_bytes = r.min_bytes;
	c->avg_bytes = r.avg_bytes;
	c->max_bytes = r.max_bytes;
	c->mask_strict = r.mask_strict;
	c->mask_loose = r.mask_loose;
	c->gear = 0;
	c->offset = 0;
	c->len_bytes = 0;
	c->sha = sha;
	c->fn = fn;
	c->arg = arg;
	c->err = 0;
	return 0;
}

/* Hands the current chunk to the callback and starts the next one. */
static int chunker_emit(struct qs_chunker *c)
{
	uint8_t digest[QS_SHA256_LEN];
	qs_sha256_digest(&c->sha, digest);
	int rc = c->fn(c->arg, c->offset, c->len_bytes, digest);
	c->offset += c->len_bytes;
	c->len_bytes = 0;
	c->gear = 0;
	if (rc != 0)
		c->err = rc;
	return rc;
}

int qs_chunker_feed(struct qs_chunker *c, const void *data, size_t len)
{
	if (c->err != 0)
		return c->err;
	const struct chunker_rule r = {c->min_bytes, c->avg_bytes, c->max_bytes, c->mask_strict,
				       c->mask_loose};
	const uint8_t *p = data;
	while (len > 0) {
		bool cut = false;
		size_t n = chunker_step(&r, &c->gear, c->len_bytes, p,
					min_size(len, CHUNKER_BLOCK_BYTES), &cut);
		qs_sha256_update(&c->sha, p, n);
		c->len_bytes += n;
		p += n;
		len -= n;
		if (cut) {
			int rc = chunker_emit(c);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int qs_chunker_finish(struct qs_chunker *c)
{
	if (c->err != 0)
		return c->err;
	int rc = 0;
	if (c->len_bytes > 0)
		rc = chunker_emit(c);
	if (rc == 0)
		c->err = QS_ESTATE;
	return rc;
}

void qs_chunker_release(struct qs_chunker *c)
{
	qs_sha256_release(&c->sha);
}
