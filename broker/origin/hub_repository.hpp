// File: broker/origin/hub_repository.hpp
//
// A repository on a Hugging Face–compatible hub, so that hf:ORG/NAME@REV
// works with no local cache: the revision's commit and file list come from
// the hub's `api/models/ORG/NAME/revision/REV` route, and the files are
// chosen by the same rules as a local repository's (broker/store/
// repository.hpp): each file's size from a ranged GET of its
// `resolve/COMMIT/FILE` route, the index read whole. The files are then
// fetched one by one as hf:ORG/NAME@COMMIT/FILE, like any hub file.
// Reentrant; blocking (run it on an origin thread).
#ifndef MODELPOOL_BROKER_ORIGIN_HUB_REPOSITORY_HPP_
#define MODELPOOL_BROKER_ORIGIN_HUB_REPOSITORY_HPP_

#include <string>

#include "broker/origin/http_transfer.hpp"
#include "broker/origin/origin_url.hpp"
#include "broker/store/hf_cache.hpp"
#include "broker/store/repository.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct HubSnapshot {
  std::string commit;  // 40 hex
  RepositoryFiles files;
};

// The snapshot `name` (repo and revision) stands for on `hub` (a kHub
// origin). not_found when the hub has no such repository or revision
// (naming what it said), else the errors of scan_repository and of the
// requests.
Result<HubSnapshot> hub_snapshot(const Origin& hub, const HfName& name, const TransferOptions& opt,
                                 const RepositoryLimits& limits, TransferCounters* counters);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_HUB_REPOSITORY_HPP_
