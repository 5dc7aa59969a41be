// A blocking client of a cluster reached by address with cafraft's protocol (cafraftctl, process
// tests, programs outside the cluster): it dials each address it needs (actors/peer.hpp),
// tries the endpoints in turn, follows not_leader redirects to the leader's address, and
// retries while no leader is known, until its deadline. Not for use inside an actor.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/all.hpp>

#include <cafraft/actors/ask.hpp>
#include <cafraft/actors/client_session.hpp>
#include <cafraft/actors/peer.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft {

class remote_client {
public:
  /// The actor system must load the middleman. `tls`: mutual TLS with these files.
  remote_client(caf::actor_system& sys, std::vector<std::string> endpoints, tls_files tls = {},
                std::chrono::milliseconds deadline = std::chrono::seconds{5});
  ~remote_client();

  /// A connected dialer for `address`, or null when it cannot be reached within `wait`.
  caf::actor connect(const std::string& address,
                     std::chrono::milliseconds wait = std::chrono::milliseconds{1500});

  /// Sends `req` to the node at `address` and waits for its answer.
  template <class Resp, class Req>
  caf::expected<Resp>
  ask(const std::string& address, const Req& req, std::chrono::milliseconds timeout,
      std::chrono::milliseconds connect_wait = std::chrono::milliseconds{2500}) {
    auto d = connect(address, connect_wait);
    if (!d)
      return make_error(errc::unreachable, "cannot reach " + address);
    return ask_watched<Resp>(sys_, d, req, timeout);
  }

  /// Sends `req` to the cluster until the deadline (`until`, else the client's). `reached`:
  /// whether any node answered.
  template <class Resp, class Req>
  caf::expected<Resp> call(const Req& req, bool& reached,
                           std::chrono::steady_clock::time_point until = {}) {
    using clock = std::chrono::steady_clock;
    if (until == clock::time_point{})
      until = clock::now() + deadline_;
    caf::error last = make_error(errc::unreachable, "no endpoint answered");
    size_t next = 0;
    std::string target = preferred_; // the node that answered last, usually the leader
    auto backoff = std::chrono::milliseconds{20};
    reached = false;
    while (clock::now() < until) {
      if (target.empty())
        target = endpoints_[next++ % endpoints_.size()];
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
      // A node that dies with the request fails it at once (connection_lost); one that hangs
      // never answers: reads, queries and writes in a session try the next node after 2 s. A
      // write without a session waits out the deadline instead, since asking again could apply
      // it twice.
      if (!writes<Req>() || in_session(req))
        left = std::min(left, std::chrono::milliseconds{2000});
      auto r = ask<Resp>(target, req, std::max(left, std::chrono::milliseconds{1}),
                         std::chrono::milliseconds{500});
      if (r) {
        reached = true;
        preferred_ = target;
        return r;
      }
      if (target == preferred_)
        preferred_.clear();
      last = r.error();
      reached = reached || !is(last, errc::unreachable);
      std::string id, address;
      if (leader_hint(last, id, address) && !address.empty() && address != target) {
        target = address; // definite: ask the leader
        continue;
      }
      if (final_error(last) || (writes<Req>() && is_indefinite(last)))
        return last;
      target.clear();
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds{500});
    }
    return last;
  }

  template <class Resp, class Req> caf::expected<Resp> call(const Req& req) {
    bool reached = false;
    return call<Resp>(req, reached);
  }

  /// A write in the client's session (actors/client_session.hpp): sent again after an
  /// indefinite failure, with the same sequence number, until a definite answer or the
  /// deadline; it applies once.
  template <class Req> caf::expected<pb::WriteResponse> write(Req req, bool& reached) {
    auto until = std::chrono::steady_clock::now() + deadline_;
    reached = false;
    auto once = [&](const auto& r) {
      bool got = false;
      auto out = call<pb::WriteResponse>(r, got, until);
      reached = reached || got;
      return out;
    };
    return write_in_session(
        session_, std::move(req), once, [&] { return once(pb::OpenSessionRequest{}); }, until);
  }

  /// Writes in a client session (the default), or without (each write sent once).
  void use_sessions(bool on) { session_.enabled = on; }
  const client_session& session() const { return session_; }

  /// A join or leave through a change client (actors/change_request.hpp): unlike call(), it
  /// also retries after leadership_lost and lost answers, since membership changes are
  /// idempotent.
  caf::expected<pb::MembershipResponse> change(const caf::message& req);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

  /// Every request from now on is for Raft group `group` of the processes it reaches
  /// (docs/groups.md; 0, the default: each process's own group).
  void use_group(uint64_t group);
  uint64_t group() const { return group_; }

  /// Requests that change the state machine (a retry after an unknown outcome may apply twice).
  template <class Req> static constexpr bool writes() {
    return std::is_same_v<Req, pb::PutRequest> || std::is_same_v<Req, pb::DeleteRequest> ||
           std::is_same_v<Req, pb::CasRequest> || std::is_same_v<Req, pb::ProposeRequest> ||
           std::is_same_v<Req, pb::OpenSessionRequest>;
  }

  /// A write that carries a session tag (sent again, it applies once).
  template <class Req> static bool in_session(const Req& req) {
    if constexpr (std::is_same_v<Req, pb::OpenSessionRequest>)
      return true; // a retry opens another session, which expires unused
    else if constexpr (writes<Req>())
      return req.has_session();
    else
      return false;
  }

  static bool is(const caf::error& e, errc c);
  /// Errors after which asking again changes nothing (or may apply a write twice).
  static bool final_error(const caf::error& e);

private:
  caf::actor_system& sys_;
  std::vector<std::string> endpoints_;
  tls_files tls_;
  std::chrono::milliseconds deadline_;
  caf::scoped_actor self_;
  std::map<std::string, caf::actor> dialers_;
  std::string preferred_;
  client_session session_;
  uint64_t group_ = 0;
};

} // namespace cafraft
