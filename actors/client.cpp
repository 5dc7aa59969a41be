#include <cafraft/actors/client.hpp>

#include <thread>

#include <caf/all.hpp>

#include <cafraft/actors/ask.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft {

client::client(caf::actor_system& sys, std::map<std::string, caf::actor> nodes,
               std::chrono::milliseconds deadline)
    : self_(sys), nodes_(std::move(nodes)), deadline_(deadline) {
  if (!nodes_.empty())
    preferred_ = nodes_.begin()->first;
}

namespace {

std::map<std::string, caf::actor> untyped_all(const std::map<std::string, node_handle>& nodes) {
  std::map<std::string, caf::actor> out;
  for (auto& [id, n] : nodes)
    out.emplace(id, untyped(n));
  return out;
}

} // namespace

client::client(caf::actor_system& sys, const std::map<std::string, node_handle>& nodes,
               std::chrono::milliseconds deadline)
    : client(sys, untyped_all(nodes), deadline) {}

template <class Response, class Request>
caf::expected<Response> client::call(const Request& req, std::string target,
                                     std::chrono::steady_clock::time_point until) {
  using clock = std::chrono::steady_clock;
  auto backoff = std::chrono::milliseconds{10};
  auto next = nodes_.begin();
  for (;;) {
    if (target.empty() || nodes_.count(target) == 0) {
      if (next == nodes_.end())
        next = nodes_.begin();
      if (next == nodes_.end())
        return make_error(errc::unknown_leader, "no nodes to ask");
      target = (next++)->first;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
    if (left.count() <= 0)
      return make_error(errc::timeout);
    auto result = ask_watched<Response>(self_->home_system(), nodes_[target], req, left);
    if (result) {
      preferred_ = target;
      return result;
    }
    auto err = result.error();
    std::string leader, address;
    if (leader_hint(err, leader, address) && nodes_.count(leader) > 0 && leader != target) {
      target = leader; // definite: the request was not taken; ask the leader
      continue;
    }
    bool retry = err == make_error(errc::unknown_leader) || err == make_error(errc::not_leader) ||
                 err == caf::sec::request_receiver_down;
    if (!retry)
      return err;
    target.clear(); // try the next node after a pause
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds{200});
  }
}

template <class Request> caf::expected<pb::WriteResponse> client::write(Request req) {
  auto until = std::chrono::steady_clock::now() + deadline_;
  return write_in_session(
      session_, std::move(req),
      [&](const Request& r) { return call<pb::WriteResponse>(r, preferred_, until); },
      [&] { return call<pb::WriteResponse>(pb::OpenSessionRequest{}, preferred_, until); }, until);
}

caf::expected<pb::WriteResponse> client::put(const std::string& key, const std::string& value) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  return write(std::move(req));
}

caf::expected<pb::WriteResponse> client::del(const std::string& key) {
  pb::DeleteRequest req;
  req.set_key(key);
  return write(std::move(req));
}

caf::expected<pb::WriteResponse> client::propose(const std::string& data) {
  pb::ProposeRequest req;
  req.set_data(data);
  return write(std::move(req));
}

caf::expected<pb::WriteResponse> client::cas(const std::string& key, const std::string& expected,
                                             const std::string& value, bool expect_absent) {
  pb::CasRequest req;
  req.set_key(key);
  req.set_expected(expected);
  req.set_value(value);
  req.set_expect_absent(expect_absent);
  return write(std::move(req));
}

caf::expected<pb::GetResponse> client::get(const std::string& key, bool stale,
                                           const std::string& node_id) {
  pb::GetRequest req;
  req.set_key(key);
  req.set_stale(stale);
  return call<pb::GetResponse>(req, node_id.empty() ? preferred_ : node_id);
}

caf::expected<pb::QueryResponse> client::query(const std::string& query, bool stale,
                                               const std::string& node_id) {
  pb::QueryRequest req;
  req.set_query(query);
  req.set_stale(stale);
  return call<pb::QueryResponse>(req, node_id.empty() ? preferred_ : node_id);
}

caf::expected<pb::NodeStatus> client::status(const std::string& node_id) {
  auto i = nodes_.find(node_id);
  if (i == nodes_.end())
    return make_error(errc::invalid_request, "unknown node " + node_id);
  caf::expected<pb::NodeStatus> result{caf::error{}};
  self_->request(i->second, std::chrono::seconds{1}, status_atom::value)
      .receive([&](pb::NodeStatus& st) { result = std::move(st); },
               [&](caf::error& e) { result = std::move(e); });
  return result;
}

} // namespace cafraft
