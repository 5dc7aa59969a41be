#include <cafraft/actors/connection.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <cafraft/actors/inspect.hpp>
#include <cafraft/actors/wire_codec.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft {

namespace {

wire::counters& wire_stats() {
  return wire::stats();
}

using steady = std::chrono::steady_clock;
using wire::fault;

/// A connection reads at most this much at once until a read fills it, then `large_read`: an
/// idle connection keeps a small buffer, a busy one makes few system calls.
constexpr size_t small_read = 4096;
constexpr size_t large_read = 64 * 1024;

struct connection_state {
  caf::io::connection_handle hdl;
  connection_options opts;
  caf::actor owner; // the dialer told of the handshake, or the listener
  std::string remote;
  std::unique_ptr<wire::session> session;
  std::unique_ptr<tls_session> tls;
  std::vector<pb::Frame> frames;
  std::vector<char> plain;
  std::vector<char> out;
  std::unordered_map<uint64_t, caf::response_promise> waiting; // our requests, by frame id
  uint64_t next_id = 1;
  size_t serving = 0; // the other side's requests under way here
  std::vector<caf::actor> subscribers;
  bool subscribed = false;
  // Watches this side asked for: the watcher of a WatchRequest until its WatchStarted comes
  // (by frame id), then by watch id: the WatchBatch frames go to it.
  std::unordered_map<uint64_t, caf::actor> watch_requests;
  std::unordered_map<uint64_t, caf::actor> watchers;
  bool closed = false;
  steady::time_point started;
  steady::time_point heard;
  steady::time_point sent;
  steady::time_point partial_since;
  bool partial = false;
  size_t read_size = small_read; // what one read takes at most (the read buffer's size)
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t non_member_frames = 0;    // Raft messages dropped: the other side is no known member
  uint64_t unknown_group_frames = 0; // Raft messages dropped: for a group this process lacks
  // The groups of this process's peers that send through this connection, by the peer's
  // address (lane_atom): their Raft messages are stamped with it (docs/groups.md).
  std::unordered_map<caf::actor_addr, uint64_t> lanes;
  message_counter handled; // frames each way and messages to send, for inspections
  static inline const char* name = "cafraft.connection";
};

using connection_actor = caf::stateful_actor<connection_state, caf::io::broker>;
using conn_ptr = connection_actor*;

const std::string& who(conn_ptr self) {
  auto& st = self->state;
  return st.opts.self.node_id.empty() ? st.remote : st.opts.self.node_id;
}

std::string other(conn_ptr self) {
  auto& st = self->state;
  if (st.session && !st.session->peer_node_id().empty())
    return st.session->peer_node_id() + " at " + st.remote;
  return st.remote;
}

/// Closes the connection and ends the actor: what waited for an answer over it fails now.
void close(conn_ptr self, fault why, const std::string& detail) {
  auto& st = self->state;
  if (st.closed)
    return;
  st.closed = true;
  wire_stats().closed[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
  if (why == fault::too_many_connections && st.opts.log) // the listener says it, once a second
    st.opts.log->debug("{}: closed the connection with {} ({}): {}", who(self), other(self),
                       wire::to_string(why), detail);
  else if (why != fault::none && st.opts.log)
    st.opts.log->warn("{}: closed the connection with {} ({}): {}", who(self), other(self),
                      wire::to_string(why), detail);
  else if (st.opts.log)
    st.opts.log->debug("{}: the connection with {} closed: {}", who(self), other(self), detail);
  for (auto& [id, rp] : st.waiting)
    rp.deliver(make_error(errc::connection_lost, other(self) + ": " + detail));
  st.waiting.clear();
  if (st.opts.groups && st.session && !st.session->peer_node_id().empty())
    st.opts.groups->disconnected(st.session->peer_node_id(), self->address());
  self->close(st.hdl);
  wire_stats().open.fetch_sub(1, std::memory_order_relaxed);
  self->quit(why == fault::none ? caf::error{make_error(errc::connection_lost, detail)}
                                : make_error(errc::connection_lost,
                                             std::string{wire::to_string(why)} + ": " + detail));
}

/// `n` bytes were added to the write buffer: sends them.
void emit_buffered(conn_ptr self, size_t n) {
  auto& st = self->state;
  wire_stats().bytes_out.fetch_add(n, std::memory_order_relaxed);
  st.bytes_out += n;
  self->flush(st.hdl);
  st.sent = steady::now();
  // What flush() could not hand to the socket yet stays in the write buffer.
  if (self->wr_buf(st.hdl).size() > st.opts.limits.max_unsent_bytes)
    close(self, fault::slow_reader,
          "more than " + std::to_string(st.opts.limits.max_unsent_bytes) + " bytes unsent");
}

/// Puts plaintext on the connection (through TLS when it is on).
void emit(conn_ptr self, const char* data, size_t n) {
  auto& st = self->state;
  auto& buf = self->wr_buf(st.hdl);
  auto before = buf.size();
  if (st.tls) {
    if (!st.tls->send(data, n))
      return close(self, fault::tls, st.tls->why());
    st.tls->take_output(buf);
  } else {
    buf.insert(buf.end(), data, data + n);
  }
  emit_buffered(self, buf.size() - before);
}

void send_frame(conn_ptr self, const pb::Frame& f) {
  auto& st = self->state;
  if (st.closed)
    return;
  wire_stats().frames_out.fetch_add(1, std::memory_order_relaxed);
  ++st.frames_out;
  st.handled.count(self->clock().now());
  if (!st.tls) { // straight into the write buffer: no copy of the frame's bytes
    auto& buf = self->wr_buf(st.hdl);
    auto before = buf.size();
    wire::append_frame(f, buf);
    return emit_buffered(self, buf.size() - before);
  }
  st.out.clear();
  wire::append_frame(f, st.out);
  emit(self, st.out.data(), st.out.size());
}

void answer(conn_ptr self, uint64_t id, caf::message m) {
  pb::Frame f;
  f.set_id(id);
  f.set_answer(true);
  if (!to_frame(m, f))
    to_frame(make_error(errc::invalid_request, "an answer the wire does not carry"), f);
  send_frame(self, f);
}

void answer_error(conn_ptr self, uint64_t id, const caf::error& e) {
  pb::Frame f;
  f.set_id(id);
  f.set_answer(true);
  to_frame(e, f);
  send_frame(self, f);
}

/// Asks the node the other side's request and sends the answer back as a frame.
template <class Answer>
void serve(conn_ptr self, const caf::actor& node, uint64_t id, caf::message msg) {
  auto& st = self->state;
  ++st.serving;
  self->request(node, caf::infinite, std::move(msg))
      .then(
          [self, id](Answer& x) {
            --self->state.serving;
            answer(self, id, caf::make_message(std::move(x)));
          },
          [self, id](caf::error& e) {
            --self->state.serving;
            answer_error(self, id, e);
          });
}

/// Passes a LeadershipEvent the node sent as a request to the subscribers on this side, and
/// answers once all have taken it (the node sends the next one then).
void pass_event(conn_ptr self, uint64_t id, caf::message ev) {
  auto& st = self->state;
  if (st.subscribers.empty()) {
    if (id != 0)
      answer(self, id, caf::message{});
    return;
  }
  auto left = std::make_shared<size_t>(st.subscribers.size());
  for (auto& s : st.subscribers)
    self->request(s, caf::infinite, ev)
        .then(
            [self, id, left] {
              if (--*left == 0 && id != 0)
                answer(self, id, caf::message{});
            },
            [self, id, left](caf::error&) {
              if (--*left == 0 && id != 0)
                answer(self, id, caf::message{});
            });
}

/// A WatchBatch from the other side, to the watcher of its watch on this side; a request is
/// answered once the watcher answered (the other side sends the next batch then).
void pass_watch_batch(conn_ptr self, uint64_t id, pb::Frame& f) {
  auto& st = self->state;
  auto watch_id = f.watch_batch().watch_id();
  auto i = st.watchers.find(watch_id);
  if (i == st.watchers.end()) {
    if (id != 0)
      answer_error(self, id, make_error(errc::invalid_request, "no such watch here"));
    return;
  }
  auto watcher = i->second;
  bool ends = f.watch_batch().error() != 0;
  if (ends)
    st.watchers.erase(i);
  auto msg = from_frame(f);
  if (id == 0) {
    self->send(watcher, std::move(msg));
    return;
  }
  self->request(watcher, caf::infinite, std::move(msg))
      .then([self, id] { answer(self, id, caf::message{}); },
            [self, id](caf::error& e) { answer_error(self, id, e); });
}

/// The node of the group a frame names (docs/groups.md), with the members it knows (null: the
/// session's own check applies); no node when this process has no such group.
std::pair<caf::actor, std::shared_ptr<known_members>> group_node(conn_ptr self, uint64_t group) {
  auto& st = self->state;
  if (!st.opts.groups)
    return {group == 0 ? st.opts.node : caf::actor{}, nullptr};
  auto g = st.opts.groups->find(group);
  if (!g)
    return {};
  if (g->node == st.opts.node)
    return {g->node, nullptr};
  return {g->node, g->members};
}

caf::error no_such_group(uint64_t group) {
  return make_error(errc::unknown_group, "no group " + std::to_string(group) + " here");
}

void take_request(conn_ptr self, pb::Frame& f) {
  auto& st = self->state;
  auto id = f.id();
  auto body = f.body_case();
  if (body == pb::Frame::kLeadershipEvent)
    return pass_event(self, id, from_frame(f));
  if (body == pb::Frame::kWatchBatch)
    return pass_watch_batch(self, id, f);
  if (!st.opts.node)
    return answer_error(self, id, make_error(errc::invalid_request, "this side serves nothing"));
  auto node = group_node(self, f.group()).first;
  if (!node)
    return answer_error(self, id, no_such_group(f.group()));
  if (st.serving >= st.opts.limits.max_requests_in_flight)
    return answer_error(
        self, id,
        make_error(errc::overloaded,
                   std::to_string(st.serving) + " requests of this connection are under way"));
  if ((body == pb::Frame::kCreateGroup || body == pb::Frame::kRemoveGroup) && st.tls &&
      st.tls->client_ca_apart() && st.tls->peer_may_be_node())
    return answer_error(self, id,
                        make_error(errc::invalid_request,
                                   "groups are created and removed with a certificate of the "
                                   "client CA (an operator's), not a node's"));
  if ((body == pb::Frame::kJoin || body == pb::Frame::kLeave) && st.tls &&
      st.tls->client_ca_apart() && st.tls->peer_may_be_node()) {
    // With a client CA apart, operators change the membership with its certificates; a node's
    // certificate asks only for the node it names (its own join, or its own leave).
    auto& who = body == pb::Frame::kJoin ? f.join().id() : f.leave().id();
    auto names = st.tls->peer_names();
    if (std::find(names.begin(), names.end(), who) == names.end())
      return answer_error(
          self, id,
          make_error(errc::invalid_request,
                     "a node's certificate changes the membership only for the node it names, "
                     "not for " +
                         who + ": an operator uses a certificate of the client CA"));
  }
  auto msg = from_frame(f);
  switch (body) {
  case pb::Frame::kPut:
  case pb::Frame::kDel:
  case pb::Frame::kCas:
  case pb::Frame::kPropose:
  case pb::Frame::kOpenSession:
    return serve<pb::WriteResponse>(self, node, id, std::move(msg));
  case pb::Frame::kGet:
    return serve<pb::GetResponse>(self, node, id, std::move(msg));
  case pb::Frame::kQuery:
    return serve<pb::QueryResponse>(self, node, id, std::move(msg));
  case pb::Frame::kSnapshotNow:
    return serve<pb::SnapshotMeta>(self, node, id, std::move(msg));
  case pb::Frame::kSnapshotRead:
    return serve<pb::SnapshotChunk>(self, node, id, std::move(msg));
  case pb::Frame::kWatch: // the batches come to this connection, which passes them on
    return serve<pb::WatchStarted>(self, node, id,
                                   caf::make_message(watch_atom::value,
                                                     msg.get_as<pb::WatchRequest>(0),
                                                     caf::actor_cast<caf::actor>(self)));
  case pb::Frame::kBatch:
    return serve<pb::BatchResponse>(self, node, id, std::move(msg));
  case pb::Frame::kStatus:
    return serve<pb::NodeStatus>(self, node, id, std::move(msg));
  case pb::Frame::kJoin:
  case pb::Frame::kLeave:
  case pb::Frame::kJoined:
    return serve<pb::MembershipResponse>(self, node, id, std::move(msg));
  case pb::Frame::kLeader:
  case pb::Frame::kWaitLeader:
  case pb::Frame::kTransferLeadership:
    return serve<pb::LeaderInfo>(self, node, id, std::move(msg));
  case pb::Frame::kStepDown:
    return serve<uint64_t>(self, node, id, std::move(msg));
  case pb::Frame::kDirectory:
    return serve<pb::ActorDirectory>(self, node, id, std::move(msg));
  case pb::Frame::kInspect:
    return serve<pb::Inspection>(self, node, id, std::move(msg));
  case pb::Frame::kRecentLog:
    return serve<pb::LogLines>(self, node, id, std::move(msg));
  case pb::Frame::kGroups:
  case pb::Frame::kCreateGroup:
  case pb::Frame::kRemoveGroup:
    return serve<pb::GroupList>(self, node, id, std::move(msg));
  default:
    return answer_error(self, id, make_error(errc::invalid_request, "not a request"));
  }
}

void take_answer(conn_ptr self, pb::Frame& f) {
  auto& st = self->state;
  if (auto w = st.watch_requests.find(f.id()); w != st.watch_requests.end()) {
    if (f.body_case() == pb::Frame::kWatchStarted)
      st.watchers[f.watch_started().watch_id()] = w->second;
    st.watch_requests.erase(w);
  }
  auto i = st.waiting.find(f.id());
  if (i == st.waiting.end())
    return; // an answer nobody waits for any more
  auto rp = std::move(i->second);
  st.waiting.erase(i);
  if (f.body_case() == pb::Frame::kError)
    rp.deliver(error_of(f));
  else
    rp.deliver(from_frame(f));
}

/// One frame of the other side, after the handshake.
void take_frame(conn_ptr self, pb::Frame& f) {
  auto& st = self->state;
  auto body = f.body_case();
  if (f.group() != 0 && st.session->version() < wire::groups_version)
    return close(self, fault::not_allowed,
                 "a frame for group " + std::to_string(f.group()) + " at protocol version " +
                     std::to_string(st.session->version()) + ", which has no groups");
  if (body == pb::Frame::kPing) {
    pb::Frame pong;
    pong.mutable_pong();
    return send_frame(self, pong);
  }
  if (body == pb::Frame::kPong)
    return;
  if (f.answer())
    return take_answer(self, f);
  if (f.id() != 0)
    return take_request(self, f);
  if (is_raft_body(body)) {
    // Raft messages only from a node, in its own name, and only to a node.
    auto& peer = st.session->peer_node_id();
    if (!st.opts.node || !st.session->takes_raft(f))
      return close(self, fault::not_allowed,
                   peer.empty()
                       ? std::string{"a Raft message from a client"}
                       : "a Raft message in the name of " + wire::raft_sender(f) + " from " + peer);
    auto [node, members] = group_node(self, f.group());
    if (!node) {
      // A group this process does not host (not yet, or no longer): dropped, logged once.
      if (st.unknown_group_frames++ == 0 && st.opts.log)
        st.opts.log->warn("{}: drops the Raft messages of {} for group {}, which this process "
                          "does not host",
                          who(self), peer, f.group());
      return;
    }
    if (members ? !members->contains(peer) : !st.session->peer_is_member()) {
      // A node of the cluster's CA that is no member it knows (a client's certificate that
      // names itself as a node, or a node not admitted yet): dropped, and logged once.
      if (st.non_member_frames++ == 0 && st.opts.log)
        st.opts.log->warn("{}: drops the Raft messages of {}, which is not a member of its "
                          "configuration (a client certificate acting as a node?)",
                          who(self), peer);
      return;
    }
    self->send(node, from_frame(f));
    return;
  }
  if (body == pb::Frame::kSubscribe && st.opts.node && !st.subscribed) {
    auto node = group_node(self, f.group()).first;
    if (!node)
      return close(self, fault::not_allowed, "a subscription to a group this process lacks");
    st.subscribed = true;
    self->send(node, subscribe_atom::value, caf::actor_cast<caf::actor>(self),
               f.subscribe().membership());
    return;
  }
  if (body == pb::Frame::kLeadershipEvent)
    return pass_event(self, 0, from_frame(f));
  if (body == pb::Frame::kWatchBatch)
    return pass_watch_batch(self, 0, f);
  close(self, fault::not_allowed,
        "a one-way " + pb::Frame::descriptor()->FindFieldByNumber(body)->name() + " frame");
}

void established(conn_ptr self) {
  auto& st = self->state;
  wire_stats().established.fetch_add(1, std::memory_order_relaxed);
  auto& peer = st.session->peer_node_id();
  if (st.opts.log)
    st.opts.log->debug("{}: connected with {}{}", who(self), other(self),
                       st.tls ? " (mutual TLS)" : "");
  self->send(st.owner, wire_up_atom::value, peer); // the dialer, or the listener
  if (st.opts.node)                                // in the node's directory (docs/inspection.md)
    self->send(st.opts.node, enlist_atom::value,
               "conn-" + (peer.empty() ? "client-" + st.remote : peer), std::string{"connection"},
               caf::actor_cast<caf::actor>(self));
  if (st.session->accepting() && !peer.empty() && st.opts.node) {
    // The node reaches that member through this connection from now on.
    self->send(st.opts.node, peer_handle_atom::value, peer, caf::actor_cast<caf::actor>(self));
  }
}

void receive(conn_ptr self, std::vector<char>& bytes) {
  auto& st = self->state;
  wire_stats().bytes_in.fetch_add(bytes.size(), std::memory_order_relaxed);
  st.bytes_in += bytes.size();
  st.heard = steady::now();
  if (bytes.size() >= st.read_size && st.read_size < large_read && st.session->established()) {
    st.read_size = large_read;
    self->configure_read(st.hdl, caf::io::receive_policy::at_most(large_read));
  }
  const std::vector<char>* plain = &bytes;
  if (st.tls) {
    bool was_done = st.tls->handshake_done();
    st.plain.clear();
    bool ok = st.tls->receive(bytes.data(), bytes.size(), st.plain);
    auto& buf = self->wr_buf(st.hdl);
    auto before = buf.size();
    st.tls->take_output(buf); // handshake records, alerts
    if (buf.size() > before)
      self->flush(st.hdl);
    if (!ok)
      return close(self, fault::tls, st.tls->why());
    if (!was_done && st.tls->handshake_done())
      st.session->set_certificate_names(st.tls->peer_names(), st.tls->peer_may_be_node());
    plain = &st.plain;
  }
  if (plain->empty())
    return;
  bool was_up = st.session->established();
  st.frames.clear();
  st.out.clear();
  auto x = st.session->feed(plain->data(), plain->size(), st.frames, st.out);
  if (!st.out.empty()) { // the handshake's answer (a Welcome, or why it was refused)
    auto reply = std::move(st.out);
    emit(self, reply.data(), reply.size());
  }
  if (x != fault::none)
    return close(self, x, st.session->why());
  if (!was_up && st.session->established())
    established(self);
  wire_stats().frames_in.fetch_add(st.frames.size(), std::memory_order_relaxed);
  st.frames_in += st.frames.size();
  for (size_t i = 0; i < st.frames.size(); ++i)
    st.handled.count(self->clock().now());
  auto frames = std::move(st.frames);
  for (auto& f : frames) {
    if (st.closed)
      return;
    take_frame(self, f);
  }
  if (st.session->buffered() == 0) {
    st.partial = false;
  } else if (!st.partial) {
    st.partial = true;
    st.partial_since = st.heard;
  }
}

std::chrono::milliseconds tick_period(const wire::limits& lim) {
  auto p = std::min(lim.idle_timeout / 6, lim.handshake_timeout / 4);
  return std::max(p, std::chrono::milliseconds{10});
}

void tick(conn_ptr self) {
  auto& st = self->state;
  auto& lim = st.opts.limits;
  auto now = steady::now();
  if (!st.session->established()) {
    if (now - st.started >= lim.handshake_timeout)
      return close(self, fault::handshake_timeout,
                   "no handshake within " + std::to_string(lim.handshake_timeout.count()) + " ms");
  } else {
    if (now - st.heard >= lim.idle_timeout)
      return close(self, fault::idle_timeout,
                   "nothing heard for " + std::to_string(lim.idle_timeout.count()) + " ms");
    if (now - st.sent >= lim.idle_timeout / 3) {
      pb::Frame ping;
      ping.mutable_ping();
      send_frame(self, ping);
    }
  }
  if (st.partial && now - st.partial_since >= lim.frame_timeout)
    return close(self, fault::slow_sender,
                 "a frame still not whole after " + std::to_string(lim.frame_timeout.count()) +
                     " ms");
  self->delayed_send(self, tick_period(lim), tick_atom::value);
}

/// A message from this process for the other side: a frame (a request waits for its answer).
caf::result<caf::message> take_outgoing(conn_ptr self, caf::message_view& x) {
  auto& st = self->state;
  bool request = self->current_mailbox_element()->mid.is_request();
  if (st.closed || !st.session->established()) {
    if (request)
      return make_error(errc::unreachable, other(self) + " is not connected");
    return caf::message{};
  }
  auto msg = x.move_content_to_message();
  // The group it is for: its sender's lane, else this side's (docs/groups.md).
  auto group = st.opts.group;
  if (auto& sender = self->current_sender(); sender && !st.lanes.empty())
    if (auto lane = st.lanes.find(sender->address()); lane != st.lanes.end())
      group = lane->second;
  if (group != 0 && st.session->version() < wire::groups_version) {
    // The other side is of a version without groups: it would take this for its group 0.
    if (request)
      return make_error(errc::unknown_group, other(self) + " speaks protocol version " +
                                                 std::to_string(st.session->version()) +
                                                 ", which has no groups");
    return caf::message{};
  }
  if (request && msg.match_elements<watch_atom, pb::WatchRequest, caf::actor>()) {
    // A watch: its batches come back to the watcher on this side (pass_watch_batch).
    auto id = st.next_id++;
    pb::Frame f;
    f.set_id(id);
    f.set_group(group);
    *f.mutable_watch() = msg.get_as<pb::WatchRequest>(1);
    auto watcher = msg.get_as<caf::actor>(2);
    if (watcher) {
      self->monitor(watcher);
      st.watch_requests.emplace(id, watcher);
    }
    st.waiting.emplace(id, self->make_response_promise());
    send_frame(self, f);
    return caf::delegated<caf::message>{};
  }
  if (msg.size() >= 2 && msg.match_element<subscribe_atom>(0) && msg.match_element<caf::actor>(1)) {
    auto sub = msg.get_as<caf::actor>(1);
    if (sub) {
      self->monitor(sub);
      st.subscribers.push_back(sub);
    }
  }
  pb::Frame f;
  f.set_group(group);
  if (!to_frame(msg, f)) {
    if (request)
      return make_error(errc::invalid_request, "not a message the wire carries");
    if (st.opts.log)
      st.opts.log->debug("{}: dropped a message the wire does not carry: {}", who(self),
                         caf::to_string(msg));
    return caf::message{};
  }
  if (request) {
    auto id = st.next_id++;
    f.set_id(id);
    st.waiting.emplace(id, self->make_response_promise());
    send_frame(self, f);
    return caf::delegated<caf::message>{};
  }
  send_frame(self, f);
  return caf::message{};
}

caf::behavior run(conn_ptr self, bool accepting) {
  auto& st = self->state;
  st.remote = self->remote_addr(st.hdl) + ":" + std::to_string(self->remote_port(st.hdl));
  st.session = std::make_unique<wire::session>(accepting, st.opts.self, st.opts.limits);
  if (!st.opts.members && st.opts.node) // the node registered them when it started
    st.opts.members = known_members_of(st.opts.node);
  if (auto known = st.opts.members)
    st.session->set_member_check([known](const std::string& id) { return known->contains(id); });
  st.started = st.heard = st.sent = steady::now();
  wire_stats().open.fetch_add(1, std::memory_order_relaxed);
  self->configure_read(st.hdl, caf::io::receive_policy::at_most(small_read));
  if (st.owner)
    self->monitor(st.owner);
  if (st.opts.node)
    self->monitor(st.opts.node);
  self->set_error_handler([](caf::scheduled_actor*, caf::error&) {});
  self->set_exit_handler(
      [self](caf::exit_msg& m) { close(self, fault::none, "stopped: " + render(m.reason)); });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source == s.owner.address() || dm.source == s.opts.node.address())
      return close(self, fault::none, "its owner stopped");
    s.lanes.erase(dm.source);
    auto& subs = s.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& a) { return a.address() == dm.source; }),
               subs.end());
    for (auto* m : {&s.watch_requests, &s.watchers})
      for (auto i = m->begin(); i != m->end();)
        i = i->second.address() == dm.source ? m->erase(i) : std::next(i);
  });
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& x) { return take_outgoing(self, x); });
  if (st.opts.tls) {
    st.tls = std::make_unique<tls_session>(st.opts.tls, accepting);
    if (!accepting) {
      if (!st.tls->start())
        close(self, fault::tls, st.tls->why());
      auto& buf = self->wr_buf(st.hdl);
      st.tls->take_output(buf);
      self->flush(st.hdl);
    }
  }
  if (!accepting) {
    auto hello = st.session->hello();
    send_frame(self, hello);
  }
  self->delayed_send(self, tick_period(st.opts.limits), tick_atom::value);
  return {
      [self](caf::io::new_data_msg& msg) { receive(self, msg.buf); },
      [self](caf::io::connection_closed_msg&) {
        close(self, fault::none, "the other side closed it");
      },
      [self](tick_atom) { tick(self); },
      [self](lane_atom, uint64_t group, const caf::actor& node) {
        // A peer of another group of this process sends through here (docs/groups.md), and so
        // does that group's node, for its requests the peer passes on (a step-down).
        auto& sender = self->current_sender();
        if (!sender || sender->node() != self->node())
          return;
        for (auto who : {sender->address(), node ? node.address() : caf::actor_addr{}})
          if (who && self->state.lanes.emplace(who, group).second)
            self->monitor(who);
      },
      [self](inspect_atom) {
        auto& s = self->state;
        auto yes_no = [](bool b) { return std::string{b ? "true" : "false"}; };
        return make_inspection(
            self, "connection", s.handled,
            {{"peer", s.session->peer_node_id().empty() ? "client" : s.session->peer_node_id()},
             {"address", s.remote},
             {"side", s.session->accepting() ? "accepted" : "dialed"},
             {"tls", yes_no(s.tls != nullptr)},
             {"established", yes_no(s.session->established())},
             {"frames_in", std::to_string(s.frames_in)},
             {"frames_out", std::to_string(s.frames_out)},
             {"bytes_in", std::to_string(s.bytes_in)},
             {"bytes_out", std::to_string(s.bytes_out)},
             {"non_member_frames", std::to_string(s.non_member_frames)},
             {"unknown_group_frames", std::to_string(s.unknown_group_frames)},
             {"lanes", std::to_string(s.lanes.size())},
             {"waiting", std::to_string(s.waiting.size())},
             {"serving", std::to_string(s.serving)},
             {"subscribers", std::to_string(s.subscribers.size())},
             {"read_buffer", std::to_string(s.read_size)}});
      },
      [self](retire_atom) {
        // From the listener: too many connections, and this one has not finished its handshake.
        if (self->current_sender() == self->state.owner)
          close(self, fault::too_many_connections, "too many connections; this one was idle");
      },
  };
}

caf::behavior dialing(conn_ptr self, int fd, connection_options opts, caf::actor owner) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.owner = std::move(owner);
  st.hdl = self->add_scribe(fd);
  return run(self, false);
}

caf::behavior accepted(conn_ptr self, caf::io::connection_handle hdl, connection_options opts,
                       caf::actor listener) {
  auto& st = self->state;
  st.hdl = hdl;
  // Small frames go out at once (CAF's multiplexer names a connection by its socket).
  int one = 1;
  ::setsockopt(static_cast<int>(hdl.id()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  st.opts = std::move(opts);
  st.owner = std::move(listener);
  return run(self, true);
}

} // namespace

caf::expected<caf::actor> dial_connection(caf::actor_system& sys, const std::string& host,
                                          uint16_t port, connection_options opts,
                                          caf::actor owner) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (auto rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return make_error(errc::unreachable, "cannot resolve " + host + ": " + gai_strerror(rc));
  int fd = -1;
  std::string why;
  for (auto* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Not blocking: the connection actor's first write waits until the socket is connected,
    // and a refused or unreachable address closes it.
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0)
    return make_error(errc::unreachable, "cannot connect to " + host + ":" + service + ": " + why);
  wire_stats().dialed.fetch_add(1, std::memory_order_relaxed);
  return sys.middleman().spawn_broker(dialing, fd, std::move(opts), std::move(owner));
}

caf::actor fork_connection(caf::io::broker* listener, caf::io::connection_handle hdl,
                           connection_options opts) {
  return listener->fork(accepted, hdl, std::move(opts), caf::actor_cast<caf::actor>(listener));
}

// The members each node of this process knows, by the node's address (known_members_of).
namespace {
std::mutex known_mtx;
std::map<caf::actor_addr, std::shared_ptr<known_members>> known_by_node;
} // namespace

void register_known_members(const caf::actor_addr& node, std::shared_ptr<known_members> known) {
  std::lock_guard<std::mutex> guard{known_mtx};
  if (known)
    known_by_node[node] = std::move(known);
  else
    known_by_node.erase(node);
}

std::shared_ptr<known_members> known_members_of(const caf::actor& node) {
  std::lock_guard<std::mutex> guard{known_mtx};
  auto i = known_by_node.find(node.address());
  return i == known_by_node.end() ? nullptr : i->second;
}

} // namespace cafraft
