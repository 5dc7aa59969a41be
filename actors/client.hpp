// A blocking client for programs that run in real time (the demo, tools, embedding code): it
// sends a request to a node, follows not_leader redirects, retries unknown_leader with backoff
// until its deadline, and never retries an indefinite failure (a timeout, leadership_lost or
// connection_lost: the write may have happened). A request whose node goes down, or whose
// dialer's connection breaks, fails at once with connection_lost (actors/ask.hpp). Not for use
// inside an actor.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

class client {
public:
  /// `nodes`: member id -> node actor (local or remote proxy).
  client(caf::actor_system& sys, std::map<std::string, caf::actor> nodes,
         std::chrono::milliseconds deadline = std::chrono::seconds{5});

  caf::expected<pb::WriteResponse> put(const std::string& key, const std::string& value);
  caf::expected<pb::WriteResponse> del(const std::string& key);
  caf::expected<pb::WriteResponse> propose(const std::string& data);
  /// Linearizable unless `stale`; a stale read is served by `node_id` (or any node if empty).
  caf::expected<pb::GetResponse> get(const std::string& key, bool stale = false,
                                     const std::string& node_id = {});
  caf::expected<pb::NodeStatus> status(const std::string& node_id);

  /// The node the next request goes to first (the last leader seen).
  const std::string& preferred() const { return preferred_; }
  void forget(const std::string& node_id) { nodes_.erase(node_id); }

private:
  template <class Response, class Request>
  caf::expected<Response> call(const Request& req, std::string target);

  caf::scoped_actor self_;
  std::map<std::string, caf::actor> nodes_;
  std::chrono::milliseconds deadline_;
  std::string preferred_;
};

} // namespace cafraft
