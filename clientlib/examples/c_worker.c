/* File: clientlib/examples/c_worker.c
 *
 * A worker written against the C ABI (modelpool/modelpool.h): connects to a
 * broker, acquires one model, prints its size, checksum, tensor count and
 * files (a repository or an hf: snapshot has several; an hf: name also
 * prints the commit it resolved to), and releases it.
 *
 *   usage: c_worker SOCKET_PATH MODEL_NAME
 *
 * Exits 0 on success, 1 on any error (message on stderr), 2 on bad usage.
 */
#include <inttypes.h>
#include <modelpool/modelpool.h>
#include <stdio.h>

static int report(const char* what, int code) {
  fprintf(stderr, "c_worker: %s failed: %s: %s\n", what, mp_error_name(code),
          mp_last_error_message());
  return 1;
}

/* One line per file: "file NAME SIZE weights|other". */
static int print_files(mp_model* model) {
  size_t count = 0;
  size_t i = 0;
  mp_file file;
  int rc = mp_model_file_count(model, &count);
  if (rc != MP_OK) return rc;
  printf("files %lu\n", (unsigned long)count);
  for (i = 0; i < count; ++i) {
    rc = mp_model_file_at(model, i, &file);
    if (rc != MP_OK) return rc;
    printf("file %s %" PRIu64 " %s\n", file.name, file.size, file.weights ? "weights" : "other");
  }
  return MP_OK;
}

int main(int argc, char** argv) {
  mp_client* client = NULL;
  mp_model* model = NULL;
  size_t tensors = 0;
  int rc = 0;

  if (argc != 3) {
    fprintf(stderr, "usage: c_worker SOCKET_PATH MODEL_NAME\n");
    return 2;
  }
  if (mp_abi_version() != MODELPOOL_ABI_VERSION) {
    fprintf(stderr, "c_worker: library ABI %d, header ABI %d\n", mp_abi_version(),
            MODELPOOL_ABI_VERSION);
    return 1;
  }
  rc = mp_connect(argv[1], &client);
  if (rc != MP_OK) return report("connect", rc);
  rc = mp_acquire(client, argv[2], -1, &model);
  if (rc != MP_OK) {
    mp_disconnect(client);
    return report("acquire", rc);
  }
  rc = mp_model_tensor_count(model, &tensors);
  if (rc != MP_OK) {
    mp_release(model);
    mp_disconnect(client);
    return report("tensor index", rc);
  }
  printf("model %s\n", mp_model_name(model));
  printf("size %" PRIu64 "\n", mp_model_size(model));
  printf("checksum %016" PRIx64 "\n", mp_model_checksum(model));
  printf("generation %" PRIu64 "\n", mp_model_generation(model));
  printf("tensors %lu\n", (unsigned long)tensors);
  if (mp_model_commit(model)[0] != '\0') printf("commit %s\n", mp_model_commit(model));
  rc = print_files(model);
  if (rc != MP_OK) {
    mp_release(model);
    mp_disconnect(client);
    return report("files", rc);
  }
  rc = mp_release(model);
  mp_disconnect(client);
  if (rc != MP_OK) return report("release", rc);
  return 0;
}
