// The command parser of cafraft-console: "CMD ARG ...; CMD ..." with single or double quotes
// around arguments that hold spaces or semicolons, and backslash escapes inside double quotes.
#pragma once

#include <string>
#include <vector>

namespace cafraft::console {

struct parsed {
  std::vector<std::vector<std::string>> commands; // each: the command word, then its arguments
  std::string error;                              // non-empty: the line is malformed
};

inline parsed parse(const std::string& line) {
  parsed out;
  std::vector<std::string> cmd;
  std::string word;
  bool in_word = false;
  char quote = 0;
  auto end_word = [&] {
    if (in_word)
      cmd.push_back(word);
    word.clear();
    in_word = false;
  };
  auto end_cmd = [&] {
    end_word();
    if (!cmd.empty())
      out.commands.push_back(cmd);
    cmd.clear();
  };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        word += line[++i];
      } else {
        word += c;
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ';') {
      end_cmd();
    } else if (c == ' ' || c == '\t') {
      end_word();
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) {
    out.error = std::string{"unterminated "} + (quote == '"' ? "double" : "single") + " quote";
    out.commands.clear();
    return out;
  }
  end_cmd();
  return out;
}

} // namespace cafraft::console
