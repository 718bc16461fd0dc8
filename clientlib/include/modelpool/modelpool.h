/* File: modelpool/modelpool.h
 *
 * The C ABI of the modelpool client library (plain C99; usable from C++ and
 * from any FFI). An mp_client is a connection to a broker's worker socket;
 * mp_acquire returns an mp_model, a read-only, zero-copy view of a model's
 * bytes in the pool's shared memory, valid until mp_release.
 *
 * Errors: every fallible call returns an mp_error code (MP_OK == 0; the same
 * codes as the wire protocol) and sets a message for the calling thread,
 * read with mp_last_error_message(). Success leaves the message unchanged.
 * A NULL pointer where an object is required gives MP_BAD_REQUEST.
 *
 * Ownership: mp_connect/mp_acquire hand out objects the caller frees with
 * mp_disconnect/mp_release. A model stays valid after its client is
 * disconnected. Pointers a model hands out (data, tensor and file names,
 * shapes, the commit) are valid until mp_release of that model.
 *
 * Threads: one mp_client may be used from several threads. Calls on one
 * mp_model may run concurrently, except mp_release.
 */
#ifndef MODELPOOL_MODELPOOL_H_
#define MODELPOOL_MODELPOOL_H_

#include <stddef.h>
#include <stdint.h>

#define MODELPOOL_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_client mp_client;
typedef struct mp_model mp_model;

/* Mirrors modelpool::ErrorCode. */
typedef enum mp_error {
  MP_OK = 0,
  MP_BAD_REQUEST = 1, /* also: a NULL argument to this API */
  MP_UNKNOWN_OP = 2,
  MP_INVALID_NAME = 3,
  MP_NOT_FOUND = 4,
  MP_TOO_LARGE = 5,
  MP_POOL_FULL = 6,
  MP_LOAD_FAILED = 7,
  MP_FORBIDDEN = 8,
  MP_STALE_HANDLE = 9,
  MP_SHUTTING_DOWN = 10,
  MP_UNAVAILABLE = 11, /* the broker cannot be reached */
  MP_PROTOCOL = 12,    /* the broker's reply broke the protocol */
  MP_INTERNAL = 13
} mp_error;

typedef enum mp_format {
  MP_FORMAT_RAW = 0,
  MP_FORMAT_SAFETENSORS = 1,
  MP_FORMAT_GGUF = 2
} mp_format;

#define MP_MAX_DIMS 8

typedef struct mp_tensor {
  const char* name;  /* NUL-terminated */
  const char* dtype; /* as the format spells it: "F32", "BF16", "Q4_K", ... */
  int32_t ndim;
  int64_t shape[MP_MAX_DIMS];
  const void* data;
  uint64_t size; /* bytes */
} mp_tensor;

/* One file of a model. A model of one file has one, named as the model; a
 * repository (a directory below the broker's models root, or an hf:ORG/NAME
 * snapshot) or a GGUF split set has its weights files first, in index
 * order, then its small files (config.json, tokenizer.json, ...). */
typedef struct mp_file {
  const char* name; /* NUL-terminated: "model-00001-of-00002.safetensors" */
  mp_format format;
  int32_t weights;  /* 1: its tensors are the model's; else 0 */
  const void* data; /* the file's bytes in the pool; NULL for size 0 */
  uint64_t size;    /* bytes */
} mp_file;

/* MODELPOOL_ABI_VERSION of the loaded library. */
int mp_abi_version(void);

/* "pool_full" for MP_POOL_FULL; never NULL. */
const char* mp_error_name(int code);

/* The message of this thread's last failed call ("" if none). */
const char* mp_last_error_message(void);

/* Connects to the worker socket at `socket_path`; NULL: $MODELPOOL_SOCKET,
 * else the default pool's socket. */
int mp_connect(const char* socket_path, mp_client** out);

/* Closes the client. Models acquired from it stay valid. NULL is a no-op. */
void mp_disconnect(mp_client* client);

/* Acquires the model called `name`, loading it first if needed. `wait_ms`:
 * how long the broker may wait for room when the pool is full; -1 for the
 * broker's default. */
int mp_acquire(mp_client* client, const char* name, int64_t wait_ms, mp_model** out);

/* Releases the model's handle and frees `model` (NULL is a no-op). Returns
 * the broker's verdict on the release; the model is freed either way. */
int mp_release(mp_model* model);

const void* mp_model_data(const mp_model* model); /* NULL for size 0 */
uint64_t mp_model_size(const mp_model* model);
uint64_t mp_model_generation(const mp_model* model);
uint64_t mp_model_checksum(const mp_model* model); /* xxh3-64 */
mp_format mp_model_format(const mp_model* model);
const char* mp_model_name(const mp_model* model);

/* The tensor index (parsed on first use; empty for raw models).
 * MP_LOAD_FAILED when the file's index is invalid; MP_NOT_FOUND for an
 * unknown name or index; MP_INTERNAL for a tensor of more than MP_MAX_DIMS
 * dimensions. */
int mp_model_tensor_count(mp_model* model, size_t* count);
int mp_model_tensor_at(mp_model* model, size_t index, mp_tensor* out);
int mp_model_tensor(mp_model* model, const char* name, mp_tensor* out);

/* The file's metadata as JSON object text, valid until mp_release. */
int mp_model_metadata_json(mp_model* model, const char** out);

/* The model's files (see mp_file). MP_NOT_FOUND for an index out of range
 * or a name the model has no file of. */
int mp_model_file_count(mp_model* model, size_t* count);
int mp_model_file_at(mp_model* model, size_t index, mp_file* out);
int mp_model_file(mp_model* model, const char* name, mp_file* out);

/* The commit an hf: name resolved to (40 hex digits); "" for other names
 * and for NULL. */
const char* mp_model_commit(const mp_model* model);

#ifdef __cplusplus
}
#endif

#endif /* MODELPOOL_MODELPOOL_H_ */
