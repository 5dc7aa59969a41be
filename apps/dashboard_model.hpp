// What the web dashboard of cafraft-node shows (docs/deployment.md, "The dashboard"), without
// HTTP or actors: samples of the cluster go in, once a second; the JSON that the page at / reads
// comes out. The page itself is apps/dashboard/index.html, compiled into the binary.
//
//   /v1/cluster   the latest sample: every member with role, term, commit and applied indexes,
//                 lag behind the leader's commit, health, and (while the page is open) its
//                 actors with mailbox depth and message rates
//   /v1/history   the last ten minutes: writes per second, the leader's write latency, the
//                 fsync latency of each member, and the events (leaders, terms, membership,
//                 members lost and back)
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

/// One member as the sampler saw it.
struct member_sample {
  pb::Member member;
  bool reachable = false;
  std::string error;                     // why not, when unreachable
  pb::NodeStatus status;                 // when reachable
  std::vector<pb::ActorInfo> actors;     // its actor tree, when it was asked for
  std::vector<pb::Inspection> inspected; // its storage (and leader) always, all when asked for
};

/// The cluster at one moment, as seen from the node that serves the dashboard.
struct cluster_sample {
  int64_t unix_ms = 0;
  std::string served_by;
  std::vector<member_sample> members;
};

/// A member whose applied index is this far behind the leader's commit is shown as lagging.
constexpr uint64_t lagging_entries = 1000;

class dashboard_model {
public:
  /// Keeps `points` samples (one a second: ten minutes) and the last `events` events.
  explicit dashboard_model(size_t points = 600, size_t events = 200);

  void add(cluster_sample s);

  /// The latest sample, as /v1/cluster serves it (null before the first).
  nlohmann::json cluster() const;

  /// The chart points and the events, as /v1/history serves them.
  nlohmann::json history() const;

private:
  struct counters {
    uint64_t answered = 0, answer_us = 0; // the leader's timed writes
    std::string leader;                   // whose counters (a new leader starts at zero)
    std::map<std::string, std::pair<uint64_t, uint64_t>> fsync; // member -> (writes, µs)
  };
  void event(int64_t t, const std::string& kind, std::string text);

  size_t max_points_, max_events_;
  std::optional<cluster_sample> last_;
  std::optional<counters> counters_;
  std::string leader_key_;
  nlohmann::json cluster_;
  std::deque<nlohmann::json> points_;
  std::deque<nlohmann::json> events_;
};

} // namespace cafraft
