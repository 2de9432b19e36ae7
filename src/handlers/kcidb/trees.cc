// Trees file parsing with yaml-cpp.
#include "handlers/kcidb/trees.h"

#include <yaml-cpp/yaml.h>

#include "core/embedded.h"

namespace sluice::kcidb {

Result<TreeMap> TreeMap::Parse(std::string_view yaml) {
  TreeMap map;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    YAML::Node trees = root["trees"];
    if (!trees || !trees.IsMap()) {
      return Status::InvalidArgument("trees file has no 'trees:' mapping");
    }
    for (const auto& entry : trees) {
      std::string name = entry.first.as<std::string>();
      if (!entry.second.IsMap() || !entry.second["url"]) {
        return Status::InvalidArgument("tree '" + name + "' has no url");
      }
      map.by_url_[entry.second["url"].as<std::string>()] = name;
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("trees file is not valid YAML: ") + e.what());
  }
  return map;
}

Result<TreeMap> TreeMap::Default() {
  auto text = EmbeddedFile("data/kcidb/trees.yml");
  if (!text) return Status::Internal("default trees file not embedded");
  return Parse(*text);
}

std::string_view TreeMap::NameFor(std::string_view url) const {
  auto it = by_url_.find(std::string(url));
  return it == by_url_.end() ? std::string_view() : std::string_view(it->second);
}

}  // namespace sluice::kcidb
