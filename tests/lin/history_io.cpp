// The saved-history format of linearizability.hpp: one operation a line, nine tab-separated
// fields, text fields escaped with backslashes, \N for an absent optional value.
#include "tests/lin/linearizability.hpp"

#include <charconv>
#include <istream>
#include <ostream>
#include <string_view>

namespace cafraft::lin {
namespace {

constexpr std::size_t field_count = 9;
constexpr std::string_view null_field = "\\N";

void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
    case '\\':
      out += "\\\\";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    default:
      out += c;
    }
  }
}

void append_optional(std::string& out, const std::optional<std::string>& v) {
  if (v)
    append_escaped(out, *v);
  else
    out += null_field;
}

/// Undoes append_escaped; false on a backslash followed by anything else (or by nothing).
bool unescape(std::string_view field, std::string& out) {
  out.clear();
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out += field[i];
      continue;
    }
    if (++i == field.size())
      return false;
    switch (field[i]) {
    case '\\':
      out += '\\';
      break;
    case 't':
      out += '\t';
      break;
    case 'n':
      out += '\n';
      break;
    case 'r':
      out += '\r';
      break;
    default:
      return false;
    }
  }
  return true;
}

template <typename Int> bool parse_int(std::string_view field, Int& out) {
  if (field.empty())
    return false;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

bool parse_kind(std::string_view field, op_kind& out) {
  for (const op_kind k : {op_kind::read, op_kind::write, op_kind::cas, op_kind::append}) {
    if (field == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

bool parse_outcome(std::string_view field, outcome& out) {
  for (const outcome r : {outcome::ok, outcome::fail, outcome::rejected, outcome::unknown}) {
    if (field == to_string(r)) {
      out = r;
      return true;
    }
  }
  return false;
}

/// A short, printable excerpt of a bad field for an error message.
std::string excerpt(std::string_view field) {
  constexpr std::size_t max_length = 40;
  std::string out = "'";
  append_escaped(out, field.substr(0, max_length));
  if (field.size() > max_length)
    out += "...";
  return out + "'";
}

} // namespace

std::string to_line(const operation& op) {
  std::string out = std::to_string(op.client);
  out += '\t';
  append_escaped(out, op.key);
  out += '\t';
  out += to_string(op.kind);
  out += '\t';
  append_escaped(out, op.value);
  out += '\t';
  append_optional(out, op.expected);
  out += '\t';
  append_optional(out, op.read_value);
  out += '\t';
  out += to_string(op.result);
  out += '\t';
  out += std::to_string(op.invoke);
  out += '\t';
  out += std::to_string(op.complete);
  return out;
}

std::optional<operation> from_line(const std::string& line, std::string& error) {
  std::string_view fields[field_count];
  std::size_t count = 0;
  std::size_t begin = 0;
  while (true) {
    const std::size_t tab = line.find('\t', begin);
    const std::size_t end = tab == std::string::npos ? line.size() : tab;
    if (count == field_count) {
      error = "more than " + std::to_string(field_count) + " tab-separated fields";
      return std::nullopt;
    }
    fields[count++] = std::string_view(line).substr(begin, end - begin);
    if (tab == std::string::npos)
      break;
    begin = tab + 1;
  }
  if (count != field_count) {
    error = std::to_string(count) + " tab-separated fields, expected " +
            std::to_string(field_count) +
            " (client key kind value expected read_value result invoke complete)";
    return std::nullopt;
  }

  operation op;
  auto text = [&](std::size_t i, const char* name, std::string& out) {
    if (fields[i] == null_field) {
      error = std::string(name) + " cannot be \\N (absent)";
      return false;
    }
    if (!unescape(fields[i], out)) {
      error =
          std::string(name) + ": bad escape in " + excerpt(fields[i]) + " (use \\\\ \\t \\n \\r)";
      return false;
    }
    return true;
  };
  auto optional_text = [&](std::size_t i, const char* name, std::optional<std::string>& out) {
    if (fields[i] == null_field) {
      out.reset();
      return true;
    }
    out.emplace();
    return text(i, name, *out);
  };

  if (!parse_int(fields[0], op.client)) {
    error = "client: not an int: " + excerpt(fields[0]);
    return std::nullopt;
  }
  if (!text(1, "key", op.key))
    return std::nullopt;
  if (!parse_kind(fields[2], op.kind)) {
    error = "kind: " + excerpt(fields[2]) + " is not read, write, cas or append";
    return std::nullopt;
  }
  if (!text(3, "value", op.value) || !optional_text(4, "expected", op.expected) ||
      !optional_text(5, "read_value", op.read_value))
    return std::nullopt;
  if (!parse_outcome(fields[6], op.result)) {
    error = "result: " + excerpt(fields[6]) + " is not ok, fail, rejected or unknown";
    return std::nullopt;
  }
  if (!parse_int(fields[7], op.invoke)) {
    error = "invoke: not an int64: " + excerpt(fields[7]);
    return std::nullopt;
  }
  if (op.result == outcome::unknown && fields[8] == "-") {
    op.complete = std::numeric_limits<int64_t>::max();
  } else if (!parse_int(fields[8], op.complete)) {
    error = "complete: not an int64: " + excerpt(fields[8]);
    return std::nullopt;
  }
  if (op.result != outcome::unknown && op.complete < op.invoke) {
    error = "complete " + std::to_string(op.complete) + " is before invoke " +
            std::to_string(op.invoke);
    return std::nullopt;
  }
  return op;
}

void write_history(std::ostream& out, const std::vector<operation>& history) {
  out << "# cafraft linearizability history: "
         "client\tkey\tkind\tvalue\texpected\tread_value\tresult\tinvoke\tcomplete\n";
  for (const operation& op : history)
    out << to_line(op) << '\n';
}

std::optional<std::vector<operation>> read_history(std::istream& in, std::string& error) {
  std::vector<operation> history;
  std::string line;
  for (uint64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || line.front() == '#')
      continue;
    std::string why;
    auto op = from_line(line, why);
    if (!op) {
      error = "line " + std::to_string(number) + ": " + why;
      return std::nullopt;
    }
    history.push_back(std::move(*op));
  }
  if (in.bad()) {
    error = "read error";
    return std::nullopt;
  }
  return history;
}

} // namespace cafraft::lin
