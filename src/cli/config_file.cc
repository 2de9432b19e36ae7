// Config files (-c FILE): turned into flags placed before the command line's own, so the
// command line overrides the file.
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "core/env.h"

namespace sluice::cli {
namespace {

std::string Trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// "[spool.NAME]" or "[spools.NAME]" -> NAME; "" for any other line.
std::string SpoolSection(const std::string& line) {
  for (const char* prefix : {"[spool.", "[spools."}) {
    std::string p(prefix);
    if (line.size() > p.size() + 1 && line.compare(0, p.size(), p) == 0 && line.back() == ']') {
      std::string name = Trim(line.substr(p.size(), line.size() - p.size() - 1));
      if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
        name = name.substr(1, name.size() - 2);
      }
      return name;
    }
  }
  return "";
}

// Reads `path`; the flags outside spool sections go to *global, each spool section's to
// *spools (in file order).
Status ParseConfig(const std::string& path, std::vector<std::string>* global,
                   std::vector<std::pair<std::string, std::vector<std::string>>>* spools,
                   std::map<std::string, std::string>* origins = nullptr) {
  std::string text;
  Status read = ReadConfigFile(path, 1 << 20, &text);
  if (!read.ok()) return read.Annotate("cannot read the config file");
  std::istringstream in(text);
  std::vector<std::string>* args = global;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      std::string name = SpoolSection(line);
      if (name.empty()) {
        args = global;  // [serve], [sluice], …: flags of the daemon
      } else {
        spools->emplace_back(name, std::vector<std::string>{});
        args = &spools->back().second;
      }
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(path + ":" + std::to_string(lineno) +
                                     ": expected 'key = value'");
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    for (char& c : key) c = c == '_' ? '-' : c;
    if (key == "dir") key = "spool-dir";
    if (key == "workers") key = "max-workers";
    std::string where = path + ":" + std::to_string(lineno);
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
    if (key.empty()) return Status::InvalidArgument(where + ": no key before '='");
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
