// Tree names: `trees: {<name>: {url: <git url>}}` (KernelCI's trees.yml). A checkout whose
// git_repository_url equals a tree's url gets that tree's name.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace sluice::kcidb {

class TreeMap {
 public:
  // Parses the YAML text. InvalidArgument naming the problem when it is not a trees file.
  static Result<TreeMap> Parse(std::string_view yaml);
  // The shipped default trees file.
  static Result<TreeMap> Default();

  // The tree name for `url`, or empty.
  std::string_view NameFor(std::string_view url) const;
  size_t size() const { return by_url_.size(); }

 private:
  std::unordered_map<std::string, std::string> by_url_;
};

}  // namespace sluice::kcidb
