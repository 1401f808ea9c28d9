/*
 * codec: the compression codecs of Kafka record batches (attributes bits
 * 0-2): gzip, snappy, lz4 and zstd, on Debian's libraries (isa-l's igzip,
 * libsnappy, liblz4, libzstd). Whole buffers in, whole buffers out: a
 * batch's records region is one compressed stream.
 *
 * What each codec is on the wire, as the clients write and read it:
 *   gzip    one gzip member (RFC 1952); further members are read too, as
 *           Java's GZIPInputStream reads them.
 *   snappy  either snappy-java's "xerial" framing (the Java client, and
 *           kafka-python: the 8 bytes "\x82SNAPPY\0", two big-endian int32
 *           versions, then blocks of a big-endian int32 length and a raw
 *           snappy block of at most 32 KiB of input), or one raw snappy
 *           block with no framing (librdkafka: its writer compresses raw,
 *           its reader, like snappy-java's SnappyInputStream, takes both).
 *           Decoding tells the two apart by the magic, as those readers do;
 *           encoding writes the form asked for (see CODEC_FORM_SNAPPY_RAW),
 *           so a rewritten batch keeps the form its producer chose.
 *   lz4     the LZ4 frame format (KIP-57), blocks of at most 64 KiB, each
 *           independent: Kafka's Java reader (KafkaLZ4BlockInputStream)
 *           decompresses every block on its own.
 *   zstd    zstd frames (one when written here).
 *
 * Decompression is bounded: the output buffer never grows past its max
 * (out->max), and data that would decompress past it is an error of its
 * own (-EFBIG), not corruption, so callers can leave such a batch alone.
 * Corrupt or truncated input is -EINVAL, never a crash: every length is
 * checked before it is used, and the libraries' decoders are the bounds-
 * checked ("safe") ones.
 *
 * Threading: a codec_ctx and a codec_buf belong to one thread at a time.
 * No I/O. Library contexts and the output buffer are allocated on first
 * use and kept for the next call.
 */
#ifndef SLUICE_STORAGE_CODEC_H
#define SLUICE_STORAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's compression type ids (the batch's attributes & 0x7). */
enum codec_id {
	CODEC_NONE = 0,
	CODEC_GZIP = 1,
	CODEC_SNAPPY = 2,
	CODEC_LZ4 = 3,
	CODEC_ZSTD = 4,
};

/* A form of a codec's stream that decoding reports and encoding takes.
 * 0: the default form (snappy: xerial framing). */
#define CODEC_FORM_SNAPPY_RAW 0x1u /* snappy as one raw block, librdkafka's form */

/* Decompressed bytes. Zero-initialise and set max; free with
 * codec_buf_free. */
struct codec_buf {
	uint8_t *p;
	size_t cap;  /* allocated */
	size_t max;  /* never grown past this: the decompressed size limit */
};

struct inflate_state;
struct ZSTD_DCtx_s;
struct ZSTD_CCtx_s;
struct LZ4F_dctx_s;

/* Library state, made on first use of each codec. Zero-initialise; free
 * with codec_ctx_free. */
struct codec_ctx {
	struct inflate_state *inflate;
	uint8_t *deflate_level_buf;
	struct ZSTD_DCtx_s *zstd_d;
	struct ZSTD_CCtx_s *zstd_c;
	int zstd_window_log_max; /* what zstd_d was set up for */
	struct LZ4F_dctx_s *lz4_d;
};

void codec_ctx_free(struct codec_ctx *cx);
void codec_buf_free(struct codec_buf *b);

/* Memory cx holds: its libraries' contexts (liblz4 does not say what its
 * decompression context holds: a fixed estimate is counted for it). */
size_t codec_ctx_bytes(const struct codec_ctx *cx);

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown". */
const char *codec_name(int codec);

/* Decompress in[0, in_len), compressed with codec (gzip, snappy, lz4 or
 * zstd), into out->p, growing out up to out->max. *form (may be NULL)
 * gets the CODEC_FORM_* bits that codec_compress takes to write the same
 * form again. Returns the decompressed length, or
 *   -EFBIG    it decompresses to more than out->max bytes
 *   -EINVAL   the input is corrupt or truncated (empty input included:
 *             no codec's stream is zero bytes long)
 *   -ENOTSUP  codec is none or not a Kafka codec
 *   -ENOMEM
 * out's contents are undefined after an error. */
int64_t codec_decompress(struct codec_ctx *cx, int codec, const uint8_t *in, size_t in_len,
			 struct codec_buf *out, unsigned *form);

/* Most bytes codec_compress writes for len bytes of input (codec none:
 * len). */
size_t codec_compress_bound(int codec, size_t len);

/* Compress in[0, len) with codec in the given form (CODEC_FORM_* bits)
 * into out[0, cap). Returns the compressed length, or -ENOSPC when cap is
 * too small (codec_compress_bound is always enough), -ENOTSUP, -ENOMEM.
 * Empty input gives a valid stream that decompresses to nothing. */
int64_t codec_compress(struct codec_ctx *cx, int codec, unsigned form, const uint8_t *in,
		       size_t len, uint8_t *out, size_t cap);

#endif
