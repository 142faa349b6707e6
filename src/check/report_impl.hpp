#pragma once
// The report writers behind render() (report.hpp); private to the check library.
#include <string>
#include <vector>

#include "phigate/check/report.hpp"

namespace phigate::check::detail {

std::string render_text(const std::vector<Finding>& findings, const Evidence& evidence);
std::string render_json(const std::vector<Finding>& findings, const Evidence& evidence);
std::string render_sarif(const std::vector<Finding>& findings, const Evidence& evidence);
std::string render_doc(const std::vector<Finding>& findings, const Evidence& evidence, bool html);

}  // namespace phigate::check::detail
