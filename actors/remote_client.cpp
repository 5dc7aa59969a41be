#include <cafraft/actors/remote_client.hpp>

#include <cafraft/actors/change_request.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft {

remote_client::remote_client(caf::actor_system& sys, std::vector<std::string> endpoints,
                             tls_files tls, std::chrono::milliseconds deadline)
    : sys_(sys), endpoints_(std::move(endpoints)), tls_(tls), deadline_(deadline), self_(sys) {}

remote_client::~remote_client() {
  for (auto& [address, d] : dialers_)
    caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
}

caf::actor remote_client::connect(const std::string& address, std::chrono::milliseconds wait) {
  auto& d = dialers_[address];
  if (!d) {
    dial_options o;
    o.address = address;
    o.tls = tls_;
    o.group = group_;
    d = spawn_dialer(sys_, o, get_logger("cafraft-client"));
  }
  auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    bool connected = false;
    self_->request(d, std::chrono::seconds{1}, peer_stats_atom::value)
        .receive([&](uint64_t, uint64_t, bool c) { connected = c; }, [](caf::error&) {});
    if (connected)
      return d;
    if (std::chrono::steady_clock::now() > until)
      return {};
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

caf::expected<pb::MembershipResponse> remote_client::change(const caf::message& req) {
  change_client_options o;
  for (auto& e : endpoints_)
    if (auto d = connect(e, std::chrono::milliseconds{500})) {
      o.contacts.push_back(d);
      o.contact_addresses.push_back(e);
    }
  if (o.contacts.empty())
    return make_error(errc::unreachable, "no endpoint answered");
  // The leader a redirect names is dialed from the change client's own thread.
  auto redirects = std::make_shared<std::map<std::string, caf::actor>>();
  auto& sys = sys_;
  auto tls = tls_;
  o.resolve = [&sys, redirects, tls, group = group_](const std::string&,
                                                     const std::string& address) {
    auto& d = (*redirects)[address];
    if (!d && !address.empty()) {
      dial_options opts;
      opts.address = address;
      opts.tls = tls;
      opts.group = group;
      d = spawn_dialer(sys, opts, get_logger("cafraft-client"));
    }
    return d;
  };
  o.timeout = deadline_;
  auto client = spawn_change_client(sys_, o);
  caf::expected<pb::MembershipResponse> out{caf::error{}};
  self_->request(client, deadline_ + std::chrono::seconds{1}, req)
      .receive([&](pb::MembershipResponse& r) { out = std::move(r); },
               [&](caf::error& e) { out = std::move(e); });
  self_->monitor(client);
  self_->send_exit(client, caf::exit_reason::user_shutdown);
  self_->receive([](caf::down_msg&) {});
  for (auto& [address, d] : *redirects)
    caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  return out;
}

void remote_client::use_group(uint64_t group) {
  if (group == group_)
    return;
  group_ = group;
  for (auto& [address, d] : dialers_)
    caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  dialers_.clear();
  preferred_.clear();
}

bool remote_client::is(const caf::error& e, errc c) {
  return e && e.category() == error_category && e.code() == static_cast<uint8_t>(c);
}

bool remote_client::final_error(const caf::error& e) {
  return is(e, errc::invalid_request) || is(e, errc::unknown_group) || is(e, errc::self_join) ||
         is(e, errc::missing_data) || is(e, errc::duplicate_member) ||
         is(e, errc::removed_member) || is(e, errc::leadership_lost) || is(e, errc::disk_full) ||
         is(e, errc::storage_failed);
}

} // namespace cafraft
