// Lab names, standardised as the KernelCI dashboard's ingester does: a build's misc.lab or a
// test's misc.runtime that was named automatically (^(shell|k8s.*)$) moves to
// misc.automatic_lab; a missing or automatic one is replaced by the object's origin.
#pragma once

#include <rapidjson/document.h>

#include <string_view>

namespace sluice::kcidb {

// Whether `name` is an automatic lab name, matched as Python's re.match does.
bool IsAutomaticLab(std::string_view name);

// Applies the rule to every build and test of `doc` (a 5.3 submission) in place.
void StandardizeLabs(rapidjson::Document* doc);

}  // namespace sluice::kcidb
