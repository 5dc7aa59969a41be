// A blocking client for programs that run in real time (the demo, tools, embedding code): it
// sends a request to a node, follows not_leader redirects, and retries unknown_leader with
// backoff until its deadline. Writes go in a client session (docs/sessions.md): one that fails
// indefinitely (a timeout, leadership_lost, connection_lost: it may have happened) is sent
// again with the same sequence number until a definite answer or the deadline, and applies
// once. A request whose node goes down, or whose dialer's connection breaks, fails at once
// with connection_lost (actors/ask.hpp). Not for use inside an actor.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>

#include <cafraft/actors/client_session.hpp>
#include <cafraft/messages/errors.hpp>
#include <cafraft/messages/node_handle.hpp>
#include <cafraft/messages/raft.pb.h>

namespace cafraft {

class client {
public:
  /// `nodes`: member id -> node actor (local or remote proxy).
  client(caf::actor_system& sys, std::map<std::string, caf::actor> nodes,
         std::chrono::milliseconds deadline = std::chrono::seconds{5});
  /// The same with typed handles (messages/node_handle.hpp).
  client(caf::actor_system& sys, const std::map<std::string, node_handle>& nodes,
         std::chrono::milliseconds deadline = std::chrono::seconds{5});

  caf::expected<pb::WriteResponse> put(const std::string& key, const std::string& value);
  caf::expected<pb::WriteResponse> del(const std::string& key);
  caf::expected<pb::WriteResponse> propose(const std::string& data);
  /// Compare and swap (pb::CasRequest): the result is a pb::KvResult.
  caf::expected<pb::WriteResponse> cas(const std::string& key, const std::string& expected,
                                       const std::string& value, bool expect_absent = false);
  /// Linearizable unless `stale`; a stale read is served by `node_id` (or any node if empty).
  caf::expected<pb::GetResponse> get(const std::string& key, bool stale = false,
                                     const std::string& node_id = {});
  /// A query for the node's own state machine (state_machine::query), answered in its format.
  caf::expected<pb::QueryResponse> query(const std::string& query, bool stale = false,
                                         const std::string& node_id = {});
  caf::expected<pb::NodeStatus> status(const std::string& node_id);

  /// A user's state machine that takes protobuf messages: proposes `command` and parses what
  /// apply() returned as a `Result`.
  template <class Result, class Command> caf::expected<Result> propose_as(const Command& command) {
    auto w = propose(command.SerializeAsString());
    if (!w)
      return w.error();
    return parse_as<Result>(w->result());
  }
  /// Asks `q` linearizably (or stale) and parses the answer as an `Answer`.
  template <class Answer, class Query>
  caf::expected<Answer> query_as(const Query& q, bool stale = false,
                                 const std::string& node_id = {}) {
    auto a = query(q.SerializeAsString(), stale, node_id);
    if (!a)
      return a.error();
    return parse_as<Answer>(a->answer());
  }

  /// The node the next request goes to first (the last leader seen).
  const std::string& preferred() const { return preferred_; }
  /// Writes in a client session (the default), or without (each write sent once).
  void use_sessions(bool on) { session_.enabled = on; }
  /// The session: its id, retries and the duplicates its table answered.
  const client_session& session() const { return session_; }
  void forget(const std::string& node_id) { nodes_.erase(node_id); }

private:
  template <class T> static caf::expected<T> parse_as(const std::string& bytes) {
    T out;
    if (!out.ParseFromString(bytes))
      return make_error(errc::invalid_request,
                        "the state machine's answer is not a " + out.GetTypeName());
    return out;
  }
  template <class Response, class Request>
  caf::expected<Response> call(const Request& req, std::string target,
                               std::chrono::steady_clock::time_point until);
  template <class Response, class Request>
  caf::expected<Response> call(const Request& req, std::string target) {
    return call<Response>(req, std::move(target), std::chrono::steady_clock::now() + deadline_);
  }
  template <class Request> caf::expected<pb::WriteResponse> write(Request req);

  caf::scoped_actor self_;
  std::map<std::string, caf::actor> nodes_;
  std::chrono::milliseconds deadline_;
  std::string preferred_;
  client_session session_;
};

} // namespace cafraft
