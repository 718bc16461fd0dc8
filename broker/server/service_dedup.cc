// File: broker/server/service_dedup.cc
//
// One copy per content. Two names of one file share its copy before any
// load (Pool::find_resident, by the file's identity). Two different files
// with the same bytes (the same shard in two repositories, a blob copied
// into two caches) are found only once the second is loaded: its XXH3, size
// and format equal a resident entry's. The checksum only nominates: the
// bytes are compared, off the event loop, and only equal bytes make the new
// load an alias of the resident copy (Pool::fold), its extent freed. A
// checksum cannot be trusted with other people's weights: a local user who
// forged a collision would otherwise have their bytes served under another
// model's name.
//
// The resident twin needs no reference while it is compared: entry ids are
// never reused and a READY entry's bytes never change, so if it is still
// there, READY and current when the comparison ends, what was read was its
// bytes throughout.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "broker/server/log_text.hpp"
#include "broker/server/service.hpp"
#include "broker/store/verify.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;

bool Service::check_content(EntryId id, const LoadResult& result, layout::Format format) {
  auto in = inflight_.find(id);
  if (in == inflight_.end() || in->second.content_checked) return false;
  in->second.content_checked = true;
  const EntryInfo* e = pool_.get(id);
  if (e == nullptr || e->size == 0) return false;
  const EntryInfo* twin = nullptr;
  for (const EntryInfo* c : pool_.entries()) {
    if (c->id != id && c->base == 0 && c->current && c->state == layout::EntryState::kReady &&
        c->size == e->size && c->checksum == result.checksum && c->format == format) {
      twin = c;
      break;
    }
  }
  if (twin == nullptr) return false;
  spdlog::debug("{} has the checksum of {}: comparing their bytes", log_text(e->name),
                log_text(twin->name));
  asio::post(comparer_, [this, id, twin_id = twin->id, fd = segment_.fd(), a = e->offset,
                         b = twin->offset, size = e->size, result, format] {
    Result<bool> same = same_bytes(fd, a, b, size);
    asio::post(io_, [this, id, twin_id, same = std::move(same), result, format]() mutable {
      EntryId into = 0;
      if (!same.ok()) {
        spdlog::warn("comparing two copies: {}", same.status().message());
      } else if (*same) {
        into = twin_id;  // Pool::fold checks it is still READY and current
      }
      settle_load(id, result, format, into);
    });
  });
  return true;
}

}  // namespace modelpool::broker
