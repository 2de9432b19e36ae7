// Config files (-c FILE): turned into flags placed before the command line's own, so the
// command line overrides the file.
#include <cctype>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "core/env.h"
#include "core/text.h"

namespace sluice::cli {
namespace {

std::string Trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The text of a value or a section header without a trailing "# comment" (TOML's): after
// a closing quote or bracket, or after white space in an unquoted value. A '#' inside
// quotes or glued to the text ("a#b") is kept.
std::string WithoutComment(const std::string& text) {
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      return Trim(text.substr(0, i));
    }
  }
  return text;
}

// A spool's name goes into logs, metric labels and Nagios perfdata labels (`sluice check
// --all`): plain characters only.
Status CheckSpoolName(const std::string& where, const std::string& name) {
  if (name.empty())
    return Status::InvalidArgument(where + ": a spool section needs a name: [spool.NAME]");
  bool plain = name.size() <= 64;
  for (unsigned char c : name)
    plain = plain && (std::isalnum(c) || c == '.' || c == '_' || c == '-');
  if (!plain) {
    return Status::InvalidArgument(where + ": the spool name '" + PrintableLine(name) +
                                   "' may hold only letters, digits, '.', '_' and '-' (at most "
                                   "64): it names the spool in logs, metrics and Nagios perfdata");
  }
  return Status::Ok();
}

// A section header: "[spool.NAME]" or "[spools.NAME]" gives NAME in *spool (else it stays
// empty: [serve], [sluice], … hold the daemon's own flags).
Status ParseSection(const std::string& where, const std::string& line, std::string* spool) {
  spool->clear();
  std::string header = WithoutComment(line);
  if (header.size() < 2 || header.back() != ']') {
    return Status::InvalidArgument(where + ": a section header ends with ']': '" +
                                   PrintableLine(line) + "'");
  }
  std::string inside = Trim(header.substr(1, header.size() - 2));
  for (const char* prefix : {"spool.", "spools."}) {
    std::string p(prefix);
    if (inside.compare(0, p.size(), p) != 0) continue;
    std::string name = Trim(inside.substr(p.size()));
    if (name.size() >= 2 && (name.front() == '"' || name.front() == '\'') &&
        name.back() == name.front()) {
      name = name.substr(1, name.size() - 2);
    }
    SLUICE_RETURN_IF_ERROR(CheckSpoolName(where, name));
    *spool = name;
    return Status::Ok();
  }
  return Status::Ok();
}

// Reads `path`; the flags outside spool sections go to *global, each spool section's to
// *spools (in file order). A key given twice in one section, or a spool section given twice,
// is an error (as in TOML and Python's configparser): the second would silently win.
Status ParseConfig(const std::string& path, std::vector<std::string>* global,
                   std::vector<std::pair<std::string, std::vector<std::string>>>* spools,
                   std::map<std::string, std::string>* origins = nullptr) {
  std::string text;
  Status read = ReadConfigFile(path, 1 << 20, &text);
  if (!read.ok()) return read.Annotate("cannot read the config file");
  std::istringstream in(text);
  std::vector<std::string>* args = global;
  std::map<std::string, std::string> section_lines;  // spool name -> where its section began
  std::map<std::string, std::string> key_lines;      // this section's keys -> where given
  std::map<std::string, std::string> global_keys;    // kept across [serve], [sluice], …
  std::map<std::string, std::string>* keys = &global_keys;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    line = Trim(line);
    std::string where = path + ":" + std::to_string(lineno);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      std::string name;
      SLUICE_RETURN_IF_ERROR(ParseSection(where, line, &name));
      if (name.empty()) {
        args = global;  // [serve], [sluice], …: flags of the daemon
        keys = &global_keys;
      } else {
        auto [it, fresh] = section_lines.emplace(name, where);
        if (!fresh) {
          return Status::InvalidArgument(where + ": [spool." + name + "] again (first at " +
                                         it->second + ")");
        }
        spools->emplace_back(name, std::vector<std::string>{});
        args = &spools->back().second;
        key_lines.clear();
        keys = &key_lines;
      }
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(where + ": expected 'key = value'");
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = WithoutComment(Trim(line.substr(eq + 1)));
    for (char& c : key) c = c == '_' ? '-' : c;
    if (key == "dir") key = "spool-dir";
    if (key == "workers") key = "max-workers";
    if (key.empty()) return Status::InvalidArgument(where + ": no key before '='");
    if (auto [it, fresh] = keys->emplace(key, where); !fresh) {
      return Status::InvalidArgument(where + ": " + PrintableLine(key) +
                                     " is given again (first at " + it->second +
                                     "); several values go in one list: key = [\"a\", \"b\"]");
    }
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      if (value.size() < 2 || value.back() != value.front()) {
        return Status::InvalidArgument(where + ": unterminated quote in '" + line + "'");
      }
      value = value.substr(1, value.size() - 2);
    } else if (value.size() >= 2 && value.front() == '[' && value.back() == ']' &&
               key != "command") {
      // A TOML list of strings -> "a,b" (list flags are comma-separated).
      std::string list, item;
      for (char c : value.substr(1, value.size() - 2)) {
        if (c == ',') {
          list += (list.empty() ? "" : ",") + Trim(item);
          item.clear();
        } else if (c != '"' && c != '\'') {
          item += c;
        }
      }
      if (!Trim(item).empty()) list += (list.empty() ? "" : ",") + Trim(item);
      value = list;
    }
    if (value == "true") {
      args->push_back("--" + key);
    } else if (value != "false") {
      args->push_back("--" + key + "=" + value);
    }
    if (origins != nullptr && (value != "false")) (*origins)[args->back()] = where;
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> ConfigFileArgs(const std::string& path,
                                                std::map<std::string, std::string>* origins) {
  std::vector<std::string> global;
  std::vector<std::pair<std::string, std::vector<std::string>>> spools;
  SLUICE_RETURN_IF_ERROR(ParseConfig(path, &global, &spools, origins));
  // Several spools: the daemon reads their sections itself.
  if (!spools.empty()) global.push_back("--spools-config=" + path);
  return global;
}

Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ConfigSpoolArgs(
    const std::string& path) {
  std::vector<std::string> global;
  std::vector<std::pair<std::string, std::vector<std::string>>> spools;
  SLUICE_RETURN_IF_ERROR(ParseConfig(path, &global, &spools));
  return spools;
}

}  // namespace sluice::cli
