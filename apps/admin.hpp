// The admin HTTP endpoints of cafraft-node (--admin HOST:PORT; off unless given), served with
// Debian's cpp-httplib from a thread of their own. Read-only: nothing that changes the cluster
// is served over HTTP.
//
//   /metrics    Prometheus text format: term, commit and applied index, per-peer lag (on the
//               leader), the write (fsync) latency histogram, mailbox sizes and messages
//               handled per actor kind, and the connections: open, established, frames and
//               bytes each way, and the connections closed by each fault (docs/protocol.md)
//   /livez      200 while the node actor answers (a missing leader never makes it fail)
//   /readyz     200 when a leader is known, else 503
//   /v1/status  the node's status as JSON
#pragma once

#include <map>
#include <string>
#include <vector>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/wire.hpp>

namespace cafraft {

/// Renders the metrics of one node from its status and the inspections of its actors.
std::string render_metrics(const pb::NodeStatus& status, const std::vector<pb::Inspection>& actors);

/// The metrics of this process's connections (runtime/wire.hpp), for node `node`.
std::string render_wire_metrics(const std::string& node);

/// Checks `text` against the Prometheus text format (comments, names, labels, values; every
/// sample's family announced by # TYPE first). Returns the first problem, or "".
std::string check_prometheus_text(const std::string& text);

} // namespace cafraft
