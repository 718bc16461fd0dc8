// File: bench/micro/codec_micro.cc
//
// Google Benchmark micro-benchmarks of the wire codec (shm/protocol): what
// one acquire round trip costs in encoding and parsing on each side, apart
// from the socket. Run: mp_bench_micro --benchmark_format=json.
#include <benchmark/benchmark.h>

#include <string>

#include "shm/protocol/frame.hpp"
#include "shm/protocol/hot_path.hpp"
#include "shm/protocol/messages.hpp"

namespace proto = modelpool::proto;

namespace {

proto::AcquireReply sample_reply() {
  proto::AcquireReply r;
  r.handle = 42;
  r.model = "llama/7b-q4.gguf";
  r.offset = 1ull << 30;
  r.size = 3'800'000'000ull;
  r.generation = 3;
  r.checksum = 0x0123456789abcdefULL;
  r.format = "gguf";
  r.cached = true;
  return r;
}

void BM_EncodeAcquireRequest(benchmark::State& state) {
  proto::AcquireRequest req{"llama/7b-q4.gguf", std::nullopt};
  for (auto _ : state) {
    std::string frame =
        proto::encode_frame(proto::encode_request("acquire", 7, proto::to_json(req)));
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(BM_EncodeAcquireRequest);

// Broker side: frame bytes in, typed request out.
void BM_DecodeAcquireRequest(benchmark::State& state) {
  const std::string frame = proto::encode_frame(proto::encode_request(
      "acquire", 7, proto::to_json(proto::AcquireRequest{"llama/7b-q4.gguf", std::nullopt})));
  for (auto _ : state) {
    proto::FrameDecoder dec;
    dec.feed(frame.data(), frame.size());
    auto payload = dec.next();
    auto req = proto::decode_request(**payload);
    auto acq = proto::decode_acquire_request(req->body);
    benchmark::DoNotOptimize(acq);
  }
}
BENCHMARK(BM_DecodeAcquireRequest);

void BM_EncodeAcquireReply(benchmark::State& state) {
  const auto reply = sample_reply();
  for (auto _ : state) {
    std::string frame = proto::encode_frame(proto::encode_ok(7, proto::to_json(reply)));
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(BM_EncodeAcquireReply);

// Client side: frame bytes in, typed reply out.
void BM_DecodeAcquireReply(benchmark::State& state) {
  const std::string frame =
      proto::encode_frame(proto::encode_ok(7, proto::to_json(sample_reply())));
  for (auto _ : state) {
    proto::FrameDecoder dec;
    dec.feed(frame.data(), frame.size());
    auto payload = dec.next();
    auto rep = proto::decode_reply(**payload);
    auto acq = proto::decode_acquire_reply(rep->body);
    benchmark::DoNotOptimize(acq);
  }
}
BENCHMARK(BM_DecodeAcquireReply);

// The hot path: what the broker and the library run per acquire, the
// reading side once with the flat scanner and once with nlohmann's SAX parser.
void BM_HotDecodeAcquireRequest(benchmark::State& state) {
  const std::string payload =
      proto::encode_acquire_request(7, proto::AcquireRequest{"llama/7b-q4.gguf", std::nullopt});
  for (auto _ : state) {
    auto req = proto::parse_hot_request(payload);
    benchmark::DoNotOptimize(req);
  }
}
BENCHMARK(BM_HotDecodeAcquireRequest);

void BM_HotEncodeAcquireReply(benchmark::State& state) {
  const auto reply = sample_reply();
  for (auto _ : state) {
    std::string payload = proto::encode_acquire_reply(7, reply);
    benchmark::DoNotOptimize(payload);
  }
}
BENCHMARK(BM_HotEncodeAcquireReply);

template <auto Parse>
void BM_HotDecodeAcquireReply(benchmark::State& state) {
  const std::string payload = proto::encode_acquire_reply(7, sample_reply());
  for (auto _ : state) {
    auto flat = Parse(payload);
    auto acq = proto::acquire_reply_from(*flat);
    benchmark::DoNotOptimize(acq);
  }
}
BENCHMARK(BM_HotDecodeAcquireReply<&proto::parse_flat_reply>)->Name("BM_HotDecodeAcquireReply");
BENCHMARK(BM_HotDecodeAcquireReply<&proto::parse_flat_reply_reference>)
    ->Name("BM_HotDecodeAcquireReply/nlohmann_sax");

// A repository's acquire reply (four shards, an index, a config): written
// by the broker, read by the library; the DOM pair as the reference.
proto::AcquireReply repository_reply() {
  proto::AcquireReply r = sample_reply();
  r.model = "org/repo-7b";
  r.format = "safetensors";
  for (int i = 1; i <= 4; ++i) {
    r.files.push_back({"model-0000" + std::to_string(i) + "-of-00004.safetensors", (1ull << 30) * i,
                       536'877'152, 1, 0x0123456789abcdefULL, "safetensors", true});
  }
  r.files.push_back({"config.json", 5ull << 30, 155, 1, 7, "raw", false});
  r.files.push_back({"model.safetensors.index.json", 6ull << 30, 17'116, 1, 9, "raw", false});
  return r;
}

void BM_RepositoryEncodeAcquireReply(benchmark::State& state) {
  const auto reply = repository_reply();
  for (auto _ : state) {
    std::string payload = proto::encode_acquire_reply(7, reply);
    benchmark::DoNotOptimize(payload);
  }
}
BENCHMARK(BM_RepositoryEncodeAcquireReply);

void BM_RepositoryEncodeAcquireReplyDom(benchmark::State& state) {
  const auto reply = repository_reply();
  for (auto _ : state) {
    std::string payload = proto::encode_ok(7, proto::to_json(reply));
    benchmark::DoNotOptimize(payload);
  }
}
BENCHMARK(BM_RepositoryEncodeAcquireReplyDom);

void BM_RepositoryDecodeAcquireReply(benchmark::State& state) {
  const std::string payload = proto::encode_acquire_reply(7, repository_reply());
  for (auto _ : state) {
    auto flat = proto::parse_flat_reply(payload);
    auto acq = proto::acquire_reply_from(*flat);
    benchmark::DoNotOptimize(acq);
  }
}
BENCHMARK(BM_RepositoryDecodeAcquireReply);

void BM_RepositoryDecodeAcquireReplyDom(benchmark::State& state) {
  const std::string payload = proto::encode_acquire_reply(7, repository_reply());
  for (auto _ : state) {
    auto rep = proto::decode_reply(payload);
    auto acq = proto::decode_acquire_reply(rep->body);
    benchmark::DoNotOptimize(acq);
  }
}
BENCHMARK(BM_RepositoryDecodeAcquireReplyDom);

// A stream of many small frames fed in 4 KiB chunks, as a busy connection sees it.
void BM_FrameDecoderStream(benchmark::State& state) {
  std::string stream;
  const std::string one = proto::encode_frame(
      proto::encode_request("release", 9, proto::to_json(proto::ReleaseRequest{12345})));
  while (stream.size() < (1u << 16)) stream += one;
  std::size_t frames = 0;
  for (auto _ : state) {
    proto::FrameDecoder dec;
    for (std::size_t off = 0; off < stream.size(); off += 4096) {
      dec.feed(stream.data() + off, std::min<std::size_t>(4096, stream.size() - off));
      for (auto f = dec.next(); f.ok() && f->has_value(); f = dec.next()) ++frames;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  benchmark::DoNotOptimize(frames);
}
BENCHMARK(BM_FrameDecoderStream);

}  // namespace
