#include <cafraft/messages/errors.hpp>

#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

const char* to_string(errc x) {
  switch (x) {
  case errc::none:
    return "none";
  case errc::not_leader:
    return "not_leader";
  case errc::unknown_leader:
    return "unknown_leader";
  case errc::leadership_lost:
    return "leadership_lost";
  case errc::config_change_in_progress:
    return "config_change_in_progress";
  case errc::self_join:
    return "self_join";
  case errc::missing_data:
    return "missing_data";
  case errc::duplicate_member:
    return "duplicate_member";
  case errc::removed_member:
    return "removed_member";
  case errc::timeout:
    return "timeout";
  case errc::overloaded:
    return "overloaded";
  case errc::storage_failed:
    return "storage_failed";
  case errc::invalid_request:
    return "invalid_request";
  case errc::shutting_down:
    return "shutting_down";
  case errc::disk_full:
    return "disk_full";
  case errc::unreachable:
    return "unreachable";
  case errc::connection_lost:
    return "connection_lost";
  case errc::session_expired:
    return "session_expired";
  case errc::watch_overflow:
    return "watch_overflow";
  case errc::compacted:
    return "compacted";
  case errc::unknown_group:
    return "unknown_group";
  }
  return "unknown cafraft error";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), error_category};
}

caf::error make_error(errc x, std::string detail) {
  return caf::error{static_cast<uint8_t>(x), error_category, caf::make_message(std::move(detail))};
}

caf::error make_not_leader(const std::string& leader_id, const std::string& leader_address) {
  return caf::error{static_cast<uint8_t>(errc::not_leader), error_category,
                    caf::make_message(leader_id, leader_address)};
}

bool leader_hint(const caf::error& e, std::string& id, std::string& address) {
  if (!e || e.category() != error_category || e.code() != static_cast<uint8_t>(errc::not_leader))
    return false;
  auto& ctx = e.context();
  if (!ctx.match_elements<std::string, std::string>())
    return false;
  id = ctx.get_as<std::string>(0);
  address = ctx.get_as<std::string>(1);
  return true;
}

std::string render(const caf::error& e) {
  if (!e)
    return "ok";
  if (e.category() != error_category)
    return caf::to_string(e);
  std::string out = to_string(static_cast<errc>(e.code()));
  std::string id, address;
  if (leader_hint(e, id, address)) {
    out += ": leader is " + id + " at " + address;
  } else if (e.context().match_elements<std::string>()) {
    out += ": " + e.context().get_as<std::string>(0);
  }
  return out;
}

bool is_indefinite(const caf::error& e) {
  if (!e)
    return false;
  if (e.category() == error_category) {
    auto c = static_cast<errc>(e.code());
    return c == errc::timeout || c == errc::leadership_lost || c == errc::storage_failed ||
           c == errc::disk_full || c == errc::connection_lost;
  }
  return e == caf::sec::request_timeout;
}

void to_pb(const caf::error& e, pb::BatchError& out) {
  out.Clear();
  if (e.category() == error_category) {
    out.set_code(e.code());
    std::string id, address;
    if (leader_hint(e, id, address)) {
      out.set_leader_id(id);
      out.set_leader_address(address);
    } else if (e.context().match_elements<std::string>()) {
      out.set_detail(e.context().get_as<std::string>(0));
    }
  } else if (e.category() == caf::atom("system")) {
    out.set_caf_sec(true);
    out.set_code(e.code());
  } else { // no other category reaches a client; kept as text
    out.set_code(static_cast<uint8_t>(errc::invalid_request));
    out.set_detail(render(e));
  }
}

caf::error from_pb(const pb::BatchError& e) {
  if (!e.caf_sec() && (e.code() == 0 || !known_errc(e.code()))) // not a code this version knows
    return make_error(errc::invalid_request,
                      "error code " + std::to_string(e.code()) + ": " + e.detail());
  auto code = static_cast<uint8_t>(e.code());
  if (e.caf_sec())
    return caf::make_error(static_cast<caf::sec>(code));
  if (code == static_cast<uint8_t>(errc::not_leader) && !e.leader_id().empty())
    return make_not_leader(e.leader_id(), e.leader_address());
  if (!e.detail().empty())
    return make_error(static_cast<errc>(code), e.detail());
  return make_error(static_cast<errc>(code));
}

} // namespace cafraft
