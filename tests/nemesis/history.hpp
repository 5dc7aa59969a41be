// What the nemesis tier's clients record, and the checks made on it that do not need the
// linearizability checker: every value the cluster ends with was written by an operation that
// may have taken effect, and no acknowledged write was lost (tests/nemesis/nemesis_test.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/lin/linearizability.hpp"

namespace cafraft::nemesis {

/// The operations of a run, on one monotonic clock (nanoseconds since the run began).
class recorder {
public:
  using steady = std::chrono::steady_clock;
  int64_t now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0_).count();
  }
  void add(lin::operation op) {
    std::lock_guard<std::mutex> guard{mtx_};
    ops_.push_back(std::move(op));
  }
  std::vector<lin::operation> operations() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return ops_;
  }

private:
  steady::time_point t0_ = steady::now();
  mutable std::mutex mtx_;
  std::vector<lin::operation> ops_;
};

/// Whether `op` may have changed its key (an acknowledged or unknown write or cas).
inline bool may_have_written(const lin::operation& op) {
  if (op.kind != lin::op_kind::write && op.kind != lin::op_kind::cas)
    return false;
  return op.result == lin::outcome::ok || op.result == lin::outcome::unknown;
}

inline bool acknowledged_write(const lin::operation& op) {
  return (op.kind == lin::op_kind::write || op.kind == lin::op_kind::cas) &&
         op.result == lin::outcome::ok;
}

/// Checks the value `final` that every node holds for `key` at the end against the key's
/// operations `ops` (values are unique): it must have been written by an operation that may
/// have taken effect, and no acknowledged write may have been invoked after that operation
/// completed (that write would have come later and been lost). An absent key must have no
/// acknowledged write. Returns the problems found, one per line ("" when none).
inline std::string check_final_value(const std::vector<const lin::operation*>& ops,
                                     const std::string& key,
                                     const std::optional<std::string>& final) {
  std::string problems;
  const lin::operation* writer = nullptr;
  for (auto* op : ops)
    if ((op->kind == lin::op_kind::write || op->kind == lin::op_kind::cas) && final &&
        op->value == *final)
      writer = op;
  if (final && !writer)
    return "key " + key + " holds \"" + *final + "\", which no operation wrote\n";
  if (writer && !may_have_written(*writer))
    problems += "key " + key +
                " holds the value of an operation that took no effect: " + lin::to_string(*writer) +
                "\n";
  for (auto* op : ops) {
    if (!acknowledged_write(*op) || op == writer)
      continue;
    if (!final)
      problems += "key " + key +
                  " is absent at the end, but this write was acknowledged: " + lin::to_string(*op) +
                  "\n";
    else if (writer->result == lin::outcome::ok && writer->complete < op->invoke)
      problems += "key " + key + " ends with \"" + *final + "\", written by " +
                  lin::to_string(*writer) +
                  ", but a later write was acknowledged and lost: " + lin::to_string(*op) + "\n";
  }
  return problems;
}

} // namespace cafraft::nemesis
