/*
 * codec: Kafka's batch compression codecs; see codec.h. Everything
 * decoded here came from a producer or a disk: lengths are checked before
 * they are used, output space is checked against the buffer's max before
 * it is allocated, and every library call is the variant that bounds its
 * writes by the space it is given.
 */
#include "storage/codec.h"

#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "storage/be.h"

/* First size of an output buffer that has none, unless the input says
 * more is needed: most batches decompress to well under this. */
#define CODEC_BUF_FIRST_BYTES (64 * 1024)

/* snappy-java's framing: magic, version, compatible version (both 1, as
 * snappy-java writes them), then blocks of this much input at most
 * (SnappyOutputStream's default, the one kafka-python uses too). */
static const uint8_t xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
#define XERIAL_HEADER_BYTES 16
#define XERIAL_BLOCK_BYTES (32 * 1024)

/* Compression levels of what is written here. gzip: isa-l's level 1, the
 * one with a small fixed working buffer. zstd: 3, its default and Kafka's.
 * lz4: the fast (non-HC) compressor, as Kafka's default. */
#define CODEC_ZSTD_LEVEL 3

/* liblz4 has no sizeof for its decompression context: it holds a frame's
 * block buffers, 64 KiB blocks (what Kafka's clients write) in and out
 * plus a 64 KiB history. An estimate, for the memory budget only. */
#define CODEC_LZ4_DCTX_BYTES (256 * 1024)

void codec_ctx_free(struct codec_ctx *cx)
{
	free(cx->inflate);
	free(cx->deflate_level_buf);
	ZSTD_freeDCtx(cx->zstd_d);
	ZSTD_freeCCtx(cx->zstd_c);
	LZ4F_freeDecompressionContext(cx->lz4_d);
	memset(cx, 0, sizeof(*cx));
}

void codec_buf_free(struct codec_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->cap = 0;
}

size_t codec_ctx_bytes(const struct codec_ctx *cx)
{
	size_t n = 0;
	if (cx->inflate != NULL)
		n += sizeof(*cx->inflate);
	if (cx->deflate_level_buf != NULL)
		n += ISAL_DEF_LVL1_DEFAULT;
	n += ZSTD_sizeof_DCtx(cx->zstd_d) + ZSTD_sizeof_CCtx(cx->zstd_c);
	if (cx->lz4_d != NULL)
		n += CODEC_LZ4_DCTX_BYTES;
	return n;
}

const char *codec_name(int codec)
{
	static const char *const names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	return codec >= 0 && codec <= CODEC_ZSTD ? names[codec] : "unknown";
}

/* Room for want bytes in b: -EFBIG past b->max, else grown (at least
 * doubling, capped at max). */
static int buf_reserve(struct codec_buf *b, size_t want)
{
	if (want > b->max)
		return -EFBIG;
	if (want <= b->cap && b->p != NULL)
		return 0;
	size_t cap = b->cap > 0 ? b->cap * 2 : CODEC_BUF_FIRST_BYTES;
	if (cap < want)
		cap = want;
	if (cap > b->max)
		cap = b->max;
	uint8_t *p = realloc(b->p, cap > 0 ? cap : 1);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Grow b for more output of a stream whose size is not known ahead: up
 * to one byte past max, so that a stream of exactly max bytes can be seen
 * to end there; the caller turns more than max into -EFBIG. */
static int buf_more(struct codec_buf *b, size_t used)
{
	if (used > b->max)
		return -EFBIG;
	size_t want = used > 0 ? 2 * used : CODEC_BUF_FIRST_BYTES;
	if (want > b->max + 1)
		want = b->max + 1;
	if (want <= b->cap && b->p != NULL)
		return 0;
	uint8_t *p = realloc(b->p, want);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = want;
	return 0;
}

/* The first buffer for a stream of compressed size in_len: room for a
 * ratio of 4, within max. */
static int buf_first(struct codec_buf *b, size_t in_len)
{
	size_t want = in_len * 4 > CODEC_BUF_FIRST_BYTES ? in_len * 4 : CODEC_BUF_FIRST_BYTES;
	return buf_reserve(b, want > b->max ? b->max : want);
}

/* The length of a finished stream: -EFBIG past max. */
static int64_t buf_done(const struct codec_buf *b, size_t used)
{
	return used > b->max ? -EFBIG : (int64_t)used;
}

/* ---- gzip ---- */

/* Every gzip member of in, one after the other. */
static int64_t gzip_decompress(struct codec_ctx *cx, const uint8_t *in, size_t in_len,
			       struct codec_buf *out)
{
	if (in_len > UINT32_MAX)
		return -EINVAL; /* isa-l counts input in 32 bits; no batch is that big */
	if (cx->inflate == NULL && (cx->inflate = malloc(sizeof(*cx->inflate))) == NULL)
		return -ENOMEM;
	struct inflate_state *s = cx->inflate;
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP; /* header parsed, trailer CRC and size checked */
	s->next_in = (uint8_t *)in;
	s->avail_in = (uint32_t)in_len;
	size_t used = 0;
	int rc = buf_first(out, in_len);
	if (rc != 0)
		return rc;
	for (;;) {
		if (used == out->cap && (rc = buf_more(out, used)) != 0)
			return rc;
		size_t room = out->cap - used;
		if (room > UINT32_MAX)
			room = UINT32_MAX;
		s->next_out = out->p + used;
		s->avail_out = (uint32_t)room;
		uint32_t in_before = s->avail_in;
		if (isal_inflate(s) < 0)
			return -EINVAL;
		used += room - s->avail_out;
		if (s->block_state == ISAL_BLOCK_FINISH) {
			if (s->avail_in == 0)
				return buf_done(out, used);
			/* Another member follows: inflate it too. */
			uint8_t *next = s->next_in;
			uint32_t left = s->avail_in;
			isal_inflate_reset(s);
			s->crc_flag = ISAL_GZIP;
			s->next_in = next;
			s->avail_in = left;
			continue;
		}
		/* No input left, room left, not finished: cut short. Neither
		 * input taken nor output made: it will not go on. */
		if ((s->avail_in == 0 && s->avail_out > 0) ||
		    (s->avail_in == in_before && s->avail_out == room))
			return -EINVAL;
	}
}

static int64_t gzip_compress(struct codec_ctx *cx, const uint8_t *in, size_t len, uint8_t *out,
			     size_t cap)
{
	if (len > UINT32_MAX)
		return -ENOSPC;
	if (cx->deflate_level_buf == NULL &&
	    (cx->deflate_level_buf = malloc(ISAL_DEF_LVL1_DEFAULT)) == NULL)
		return -ENOMEM;
	struct isal_zstream z;
	isal_deflate_stateless_init(&z);
	z.level = 1;
	z.level_buf = cx->deflate_level_buf;
	z.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
	z.gzip_flag = IGZIP_GZIP;
	z.end_of_stream = 1;
	z.flush = NO_FLUSH;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uint32_t)len;
	z.next_out = out;
	z.avail_out = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	if (isal_deflate_stateless(&z) != COMP_OK)
		return -ENOSPC;
	return (int64_t)z.total_out;
}

static size_t gzip_bound(size_t len)
{
	/* Stored deflate blocks add 5 bytes per 64 KiB, plus the gzip
	 * header and trailer: 1/64 and a page cover it with room to spare. */
	return len + len / 64 + 4096;
}

/* ---- snappy ---- */

/* One raw snappy block appended at out->p + *used. */
static int snappy_block_decompress(const uint8_t *in, size_t len, struct codec_buf *out,
				   size_t *used)
{
	size_t n;
	if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK)
		return -EINVAL;
	if (n > out->max || *used > out->max - n)
		return -EFBIG;
	int rc = buf_reserve(out, *used + n);
	if (rc != 0)
		return rc;
	size_t got = n;
	if (snappy_uncompress((const char *)in, len, (char *)out->p + *used, &got) != SNAPPY_OK ||
	    got != n)
		return -EINVAL;
	*used += n;
	return 0;
}

static bool snappy_is_xerial(const uint8_t *in, size_t len)
{
	return len >= XERIAL_HEADER_BYTES && memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0;
}

static int64_t snappy_decompress(const uint8_t *in, size_t len, struct codec_buf *out,
				 unsigned *form)
{
	size_t used = 0;
	int rc;
	if (!snappy_is_xerial(in, len)) {
		*form |= CODEC_FORM_SNAPPY_RAW;
		rc = snappy_block_decompress(in, len, out, &used);
		return rc != 0 ? rc : (int64_t)used;
	}
	/* The versions are not checked: every reader ignores them. */
	size_t pos = XERIAL_HEADER_BYTES;
	while (pos < len) {
		if (len - pos < 4)
			return -EINVAL;
		size_t n = be32_load(in + pos);
		pos += 4;
		if (n > len - pos)
			return -EINVAL;
		if (n > 0 && (rc = snappy_block_decompress(in + pos, n, out, &used)) != 0)
			return rc;
		pos += n;
	}
	/* A buffer for an empty result too: callers may look at out->p. */
	rc = buf_reserve(out, used);
	return rc != 0 ? rc : (int64_t)used;
}

static size_t snappy_bound(unsigned form, size_t len)
{
	if (form & CODEC_FORM_SNAPPY_RAW)
		return snappy_max_compressed_length(len);
	size_t full = len / XERIAL_BLOCK_BYTES, rest = len % XERIAL_BLOCK_BYTES;
	return XERIAL_HEADER_BYTES + full * (4 + snappy_max_compressed_length(XERIAL_BLOCK_BYTES)) +
	       4 + snappy_max_compressed_length(rest);
}

static int64_t snappy_compress_xerial(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	if (cap < XERIAL_HEADER_BYTES)
		return -ENOSPC;
	memcpy(out, xerial_magic, sizeof(xerial_magic));
	be32_store(out + 8, 1);
	be32_store(out + 12, 1);
	size_t pos = XERIAL_HEADER_BYTES, done = 0;
	/* At least one block, even for no input: librdkafka takes a stream
	 * for xerial only when it is longer than the header and a length. */
	do {
		size_t n = len - done > XERIAL_BLOCK_BYTES ? XERIAL_BLOCK_BYTES : len - done;
		if (cap - pos < 4 || cap - pos - 4 < snappy_max_compressed_length(n))
			return -ENOSPC;
		size_t z = cap - pos - 4;
		if (snappy_compress((const char *)in + done, n, (char *)out + pos + 4, &z) !=
		    SNAPPY_OK)
			return -ENOSPC;
		be32_store(out + pos, (uint32_t)z);
		pos += 4 + z;
		done += n;
	} while (done < len);
	return (int64_t)pos;
}

static int64_t snappy_compress_any(unsigned form, const uint8_t *in, size_t len, uint8_t *out,
				   size_t cap)
{
	if (!(form & CODEC_FORM_SNAPPY_RAW))
		return snappy_compress_xerial(in, len, out, cap);
	if (cap < snappy_max_compressed_length(len))
		return -ENOSPC;
	size_t z = cap;
	if (snappy_compress((const char *)in, len, (char *)out, &z) != SNAPPY_OK)
		return -ENOSPC;
	return (int64_t)z;
}

/* ---- lz4 ---- */

static int64_t lz4_decompress(struct codec_ctx *cx, const uint8_t *in, size_t len,
			      struct codec_buf *out)
{
	if (cx->lz4_d == NULL &&
	    LZ4F_isError(LZ4F_createDecompressionContext(&cx->lz4_d, LZ4F_VERSION))) {
		cx->lz4_d = NULL;
		return -ENOMEM;
	}
	LZ4F_resetDecompressionContext(cx->lz4_d);
	size_t used = 0, pos = 0;
	int rc = buf_first(out, len);
	if (rc != 0)
		return rc;
	/* Frames one after another until the input ends; it must end where
	 * a frame does. */
	for (;;) {
		if (used == out->cap && (rc = buf_more(out, used)) != 0)
			return rc;
		size_t room = out->cap - used, dst = room, src = len - pos;
		size_t hint = LZ4F_decompress(cx->lz4_d, out->p + used, &dst, in + pos, &src, NULL);
		if (LZ4F_isError(hint))
			return -EINVAL;
		pos += src;
		used += dst;
		if (hint == 0 && pos == len)
			return buf_done(out, used);
		/* Input all taken inside a frame though there was room to
		 * write: cut short. Nothing taken, nothing written: stuck. */
		if ((pos == len && dst < room) || (src == 0 && dst == 0))
			return -EINVAL;
	}
}

static const LZ4F_preferences_t lz4_prefs = {
	.frameInfo = {
		.blockSizeID = LZ4F_max64KB,
		.blockMode = LZ4F_blockIndependent,
		.contentChecksumFlag = LZ4F_noContentChecksum,
		.frameType = LZ4F_frame,
	},
	.compressionLevel = 0,
};

static int64_t lz4_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	if (cap < LZ4F_compressFrameBound(len, &lz4_prefs))
		return -ENOSPC;
	size_t z = LZ4F_compressFrame(out, cap, in, len, &lz4_prefs);
	if (LZ4F_isError(z))
		return -ENOSPC;
	return (int64_t)z;
}

/* ---- zstd ---- */

/* The decoder's window is bounded by the output limit (the smallest
 * power of two that holds it): a frame whose window is larger than all
 * the output allowed is too big for it anyway, and the decoder would
 * otherwise allocate up to 128 MiB for it. */
static int zstd_window_log_for(size_t max)
{
	ZSTD_bounds b = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
	int log = ZSTD_isError(b.error) ? 10 : b.lowerBound;
	int top = ZSTD_isError(b.error) ? 27 : b.upperBound;
	while (log < top && log < 62 && ((size_t)1 << log) < max)
		log++;
	return log;
}

static int zstd_err(size_t r)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_frameParameter_windowTooLarge:
		return -EFBIG;
	default:
		return -EINVAL;
	}
}

static int64_t zstd_decompress(struct codec_ctx *cx, const uint8_t *in, size_t len,
			       struct codec_buf *out)
{
	if (cx->zstd_d == NULL && (cx->zstd_d = ZSTD_createDCtx()) == NULL)
		return -ENOMEM;
	int wlog = zstd_window_log_for(out->max);
	ZSTD_DCtx_reset(cx->zstd_d, ZSTD_reset_session_only);
	if (cx->zstd_window_log_max != wlog) {
		if (ZSTD_isError(ZSTD_DCtx_setParameter(cx->zstd_d, ZSTD_d_windowLogMax, wlog)))
			return -EINVAL;
		cx->zstd_window_log_max = wlog;
	}
	/* The first frame's size, when its header says it, sizes the buffer
	 * at once (librdkafka's writer always says it). */
	unsigned long long fcs = ZSTD_getFrameContentSize(in, len);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return -EINVAL;
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > out->max)
		return -EFBIG;
	size_t first = fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > 0 ? (size_t)fcs
								    : CODEC_BUF_FIRST_BYTES;
	int rc = buf_reserve(out, first > out->max ? out->max : first);
	if (rc != 0)
		return rc;
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t used = 0, r;
	for (;;) {
		if (used == out->cap && (rc = buf_more(out, used)) != 0)
			return rc;
		ZSTD_outBuffer ob = { out->p + used, out->cap - used, 0 };
		size_t in_before = ib.pos;
		r = ZSTD_decompressStream(cx->zstd_d, &ob, &ib);
		if (ZSTD_isError(r))
			return zstd_err(r);
		used += ob.pos;
		if (r == 0 && ib.pos == ib.size)
			return buf_done(out, used); /* the last frame is complete */
		/* Input all taken but the frame goes on, while there was room
		 * to write: cut short. */
		if (ib.pos == ib.size && ob.pos < ob.size)
			return -EINVAL;
		if (ib.pos == in_before && ob.pos == 0 && ob.size > 0)
			return -EINVAL;
	}
}

static int64_t zstd_compress(struct codec_ctx *cx, const uint8_t *in, size_t len, uint8_t *out,
			     size_t cap)
{
	if (cx->zstd_c == NULL && (cx->zstd_c = ZSTD_createCCtx()) == NULL)
		return -ENOMEM;
	size_t z = ZSTD_compressCCtx(cx->zstd_c, out, cap, in, len, CODEC_ZSTD_LEVEL);
	if (ZSTD_isError(z))
		return ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation ? -ENOMEM : -ENOSPC;
	return (int64_t)z;
}

/* ---- dispatch ---- */

int64_t codec_decompress(struct codec_ctx *cx, int codec, const uint8_t *in, size_t in_len,
			 struct codec_buf *out, unsigned *form)
{
	unsigned f = 0;
	int64_t n;
	if (form != NULL)
		*form = 0;
	if (codec <= CODEC_NONE || codec > CODEC_ZSTD)
		return -ENOTSUP;
	if (in_len == 0)
		return -EINVAL;
	switch (codec) {
	case CODEC_GZIP:
		n = gzip_decompress(cx, in, in_len, out);
		break;
	case CODEC_SNAPPY:
		n = snappy_decompress(in, in_len, out, &f);
		break;
	case CODEC_LZ4:
		n = lz4_decompress(cx, in, in_len, out);
		break;
	default:
		n = zstd_decompress(cx, in, in_len, out);
		break;
	}
	if (form != NULL && n >= 0)
		*form = f;
	return n;
}

size_t codec_compress_bound(int codec, size_t len)
{
	switch (codec) {
	case CODEC_GZIP:
		return gzip_bound(len);
	case CODEC_SNAPPY:
		return snappy_bound(0, len) > snappy_bound(CODEC_FORM_SNAPPY_RAW, len)
			       ? snappy_bound(0, len)
			       : snappy_bound(CODEC_FORM_SNAPPY_RAW, len);
	case CODEC_LZ4:
		return LZ4F_compressFrameBound(len, &lz4_prefs);
	case CODEC_ZSTD:
		return ZSTD_compressBound(len);
	default:
		return len;
	}
}

int64_t codec_compress(struct codec_ctx *cx, int codec, unsigned form, const uint8_t *in,
		       size_t len, uint8_t *out, size_t cap)
{
	switch (codec) {
	case CODEC_GZIP:
		return gzip_compress(cx, in, len, out, cap);
	case CODEC_SNAPPY:
		return snappy_compress_any(form, in, len, out, cap);
	case CODEC_LZ4:
		return lz4_compress(in, len, out, cap);
	case CODEC_ZSTD:
		return zstd_compress(cx, in, len, out, cap);
	default:
		return -ENOTSUP;
	}
}
