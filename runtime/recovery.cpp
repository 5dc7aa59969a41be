#include <cafraft/runtime/recovery.hpp>

#include <stdexcept>

#include <cafraft/runtime/rules.hpp>

namespace cafraft {

forced_cluster force_new_cluster(durable_options opts, const member& self) {
  durable_storage store{opts};
  auto rec = store.load();
  if (rec.hard_state.term() == 0 && rec.log.empty() && !rec.snapshot)
    throw std::runtime_error(opts.dir + " holds no data: --force-new-cluster restarts a node that "
                                        "survived, from its data directory");
  if (rec.hard_state.resyncing())
    throw std::runtime_error(opts.dir + " holds a log that was discarded (discard_corrupt_log): "
                                        "it may lack committed entries and cannot seed a cluster");
  auto hs = rec.hard_state;
  auto rs = rules::recover(rec, std::move(rec.log), self.id, {});
  forced_cluster out;
  for (auto& m : rs.config.members)
    out.previous_members += (out.previous_members.empty() ? "" : ", ") + m.id + "@" + m.address;
  out.last_index = rs.last_index();
  rs.term = std::max(rs.term, rs.last_term()) + 1;
  member me = self;
  me.learner = false;
  me.incarnation = rs.incarnation;
  auto& entry = rules::append_config(rs, {me});
  out.config_index = entry.index();
  out.term = rs.term;
  hs.set_term(rs.term);
  hs.clear_voted_for(); // a new term: no vote in it yet
  persist_batch b;
  b.hard_state = hs;
  b.entries.push_back(entry);
  std::vector<persist_batch> batches;
  batches.push_back(std::move(b));
  store.write(std::move(batches));
  return out;
}

} // namespace cafraft
