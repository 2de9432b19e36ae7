// JSON texts as Python pickles: what King Arthur's arthurd pushes to its items list
// (pickle.dumps of each item), for consumers that read that list with pickle.loads.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

// The pickle (protocol 2) of the value `json` holds: objects as dicts (keys in order), arrays
// as lists, strings as str, integers as int, other numbers as float, true/false/null as
// True/False/None. InvalidArgument when `json` is not JSON.
Result<std::string> JsonToPickle(std::string_view json);

}  // namespace sluice
