// Lab name standardisation.
#include "handlers/kcidb/labs.h"

namespace sluice::kcidb {
namespace {

constexpr const char* kAutomaticLabField = "automatic_lab";

void StandardizeField(rapidjson::Value& item, const char* field,
                      rapidjson::Document::AllocatorType& a) {
  auto misc = item.FindMember("misc");
  const rapidjson::Value* lab = nullptr;
  if (misc != item.MemberEnd() && misc->value.IsObject()) {
    auto it = misc->value.FindMember(field);
    if (it != misc->value.MemberEnd()) lab = &it->value;
  }
  bool automatic = lab != nullptr && lab->IsString() &&
                   IsAutomaticLab(std::string_view(lab->GetString(), lab->GetStringLength()));
  // Python's `not lab`: missing, null, "", false, 0, [] or {}.
  bool empty = lab == nullptr || lab->IsNull() ||
               (lab->IsString() && lab->GetStringLength() == 0) ||
               (lab->IsBool() && !lab->GetBool()) || (lab->IsNumber() && lab->GetDouble() == 0) ||
               (lab->IsArray() && lab->Empty()) || (lab->IsObject() && lab->ObjectEmpty());
  if (automatic) {
    rapidjson::Value moved(*lab, a);
    misc->value.RemoveMember(kAutomaticLabField);
    misc->value.AddMember(rapidjson::Value(kAutomaticLabField, a), moved, a);
    misc->value.RemoveMember(field);
  }
  if (!automatic && !empty) return;
  auto origin = item.FindMember("origin");
  if (origin == item.MemberEnd() || !origin->value.IsString() ||
      origin->value.GetStringLength() == 0) {
    return;
  }
  if (misc == item.MemberEnd()) {
    item.AddMember("misc", rapidjson::Value(rapidjson::kObjectType), a);
    misc = item.FindMember("misc");
  }
  if (!misc->value.IsObject()) return;
  misc->value.RemoveMember(field);
  misc->value.AddMember(rapidjson::Value(field, a), rapidjson::Value(origin->value, a), a);
}

}  // namespace

bool IsAutomaticLab(std::string_view name) {
  if (!name.empty() && name.back() == '\n') name.remove_suffix(1);  // Python's "$"
  if (name == "shell") return true;
  return name.substr(0, 3) == "k8s" && name.find('\n') == std::string_view::npos;
}

void StandardizeLabs(rapidjson::Document* doc) {
  auto& a = doc->GetAllocator();
  for (auto [list, field] : {std::pair{"builds", "lab"}, std::pair{"tests", "runtime"}}) {
    auto it = doc->FindMember(list);
    if (it == doc->MemberEnd() || !it->value.IsArray()) continue;
    for (auto& item : it->value.GetArray()) {
      if (item.IsObject()) StandardizeField(item, field, a);
    }
  }
}

}  // namespace sluice::kcidb
