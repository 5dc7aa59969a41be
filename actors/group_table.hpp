// The Raft groups of one process (docs/groups.md), and the connections they share.
//
// A process may host many groups, each a node actor of its own (node_config::group). Group 0 is
// the process's own: its node dials and accepts the connections to the other processes, one per
// pair of processes, and every other group uses the same connections. This table is what they
// share: the node of every group with the members it knows (a connection routes each incoming
// frame by the group it names, and takes Raft messages only from that group's members), and the
// connection to every other process, by the member id of its node (a group that starts later
// finds the connections already up).
//
// Thread-safe: nodes and connections run on any scheduler thread. Header-only, because the fuzz
// build links the connection code without the node's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include <cafraft/actors/context.hpp>

namespace cafraft {

class group_table {
public:
  struct group {
    caf::actor node;
    std::shared_ptr<known_members> members;
  };

  /// Group `id` is served by `node` from now on.
  void add(uint64_t id, caf::actor node, std::shared_ptr<known_members> members) {
    std::lock_guard<std::mutex> guard{mtx_};
    groups_[id] = group{std::move(node), std::move(members)};
  }

  /// The same, unless the group is listed already (by its node, which knows its members).
  void add_if_absent(uint64_t id, caf::actor node) {
    std::lock_guard<std::mutex> guard{mtx_};
    groups_.emplace(id, group{std::move(node), nullptr});
  }

  /// Group `id` ends, if `node` still serves it.
  void remove(uint64_t id, const caf::actor_addr& node) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = groups_.find(id);
    if (i != groups_.end() && i->second.node.address() == node)
      groups_.erase(i);
  }

  std::optional<group> find(uint64_t id) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = groups_.find(id);
    if (i == groups_.end())
      return std::nullopt;
    return i->second;
  }

  /// Every group's node, by group id.
  std::vector<std::pair<uint64_t, caf::actor>> nodes() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::pair<uint64_t, caf::actor>> out;
    out.reserve(groups_.size());
    for (auto& [id, g] : groups_)
      out.emplace_back(id, g.node);
    return out;
  }

  size_t size() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return groups_.size();
  }

  /// The connection to the process whose node is `member` (a newer one replaces the older).
  void connected(const std::string& member, caf::actor connection) {
    std::lock_guard<std::mutex> guard{mtx_};
    connections_[member] = std::move(connection);
  }

  /// The connection to `member` closed: forgotten, unless a newer one took its place.
  void disconnected(const std::string& member, const caf::actor_addr& connection) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = connections_.find(member);
    if (i != connections_.end() && i->second.address() == connection)
      connections_.erase(i);
  }

  std::map<std::string, caf::actor> connections() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return connections_;
  }

private:
  mutable std::mutex mtx_;
  std::map<uint64_t, group> groups_;
  std::map<std::string, caf::actor> connections_;
};

} // namespace cafraft
