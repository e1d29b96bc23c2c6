// Model and optimizer checkpoints in the section container (io/container.hpp). Sections:
//   config       ModelConfig as key=value lines
//   composition  head and mixer, e.g. "head=dense<mtp=1> mixer=attention"
//   parameters   every tensor by name and shape, in the master precision (fp32; fp64 for Fp64)
//   adamw        step count, then both moments in the same tensor format
//   adamw_rows   with sparse_rows tensors only: the step of each of their rows' last gradient
//                (u64 count, then i64 per row, in layout order)
//   step         the training step (u64)
// Precision and backend are not part of the composition: a checkpoint loads into any of them.
// Writing refuses non-finite parameters and moments (a diverged model is never saved); reading
// checks every stated size against the section's length and the model before allocating.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "../backend/contract.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "container.hpp"

namespace lightgpt {
namespace detail {

// Element type codes of the tensor sections.
inline constexpr std::uint8_t kDtypeF32 = 4;
inline constexpr std::uint8_t kDtypeF64 = 8;

template <class A>
constexpr std::uint8_t dtype_code() {
  return sizeof(A) == 8 ? kDtypeF64 : kDtypeF32;
}

// Writes `count` tensors, fetching each one's host values with `values(tensor)`. A non-finite
// value is an Error naming the tensor (`what` names the section): the file is then not committed.
template <class A, class Fetch>
void write_tensors(CheckpointWriter& out, const ParameterLayout& layout, const char* what,
                   Fetch&& values) {
  out.write_value(static_cast<std::uint32_t>(layout.tensors().size()));
  for (const TensorInfo& tensor : layout.tensors()) {
    out.write_string(tensor.name);
    out.write_value(static_cast<std::uint32_t>(tensor.shape.size()));
    for (std::int64_t dim : tensor.shape) out.write_value(dim);
    out.write_value(dtype_code<A>());
    const std::vector<A> host = values(tensor);
    for (std::size_t i = 0; i < host.size(); ++i) {
      LIGHTGPT_CHECK(std::isfinite(host[i]), "refusing to write checkpoint '", out.path().string(),
                     "': ", what, " tensor '", tensor.name, "' holds ", double(host[i]),
                     " at element ", i, " (the model has diverged)");
    }
    out.write(host.data(), host.size() * sizeof(A));
  }
}

// Reads tensors written by write_tensors into `store(tensor, host values)`, checking that names,
// order and shapes match this model's layout; values convert between fp32 and fp64.
template <class A, class Store>
void read_tensors(SectionReader& in, const ParameterLayout& layout, Store&& store) {
  const auto count = in.read_value<std::uint32_t>();
  LIGHTGPT_CHECK(count == layout.tensors().size(), in.context(), ": holds ", count,
                 " tensors, this model has ", layout.tensors().size());
  for (const TensorInfo& tensor : layout.tensors()) {
    const std::string name = in.read_string();
    LIGHTGPT_CHECK(name == tensor.name, in.context(), ": found tensor '", name, "' where '",
                   tensor.name, "' was expected");
    const auto dims = in.read_value<std::uint32_t>();
    LIGHTGPT_CHECK(dims == tensor.shape.size(), in.context(), ": tensor '", name, "' has ", dims,
                   " dimensions, this model expects ", tensor.shape.size());
    std::vector<std::int64_t> shape(dims);
    for (std::int64_t& dim : shape) dim = in.read_value<std::int64_t>();
    auto shape_text = [](const std::vector<std::int64_t>& s) {
      std::string text;
      for (std::int64_t dim : s) text += (text.empty() ? "" : " x ") + std::to_string(dim);
      return text;
    };
    LIGHTGPT_CHECK(shape == tensor.shape, in.context(), ": tensor '", name, "' has shape ",
                   shape_text(shape), ", this model expects ", shape_text(tensor.shape));
    const auto dtype = in.read_value<std::uint8_t>();
    LIGHTGPT_CHECK(dtype == kDtypeF32 || dtype == kDtypeF64, in.context(), ": tensor '", name,
                   "' has unknown element type code ", int(dtype));
    const std::size_t element = dtype == kDtypeF64 ? 8 : 4;
    LIGHTGPT_CHECK(tensor.numel <= in.remaining() / element, in.context(), ": tensor '", name,
                   "' needs ", tensor.numel * element, " bytes, the section has ", in.remaining(),
                   " left (truncated)");
    std::vector<A> host(tensor.numel);
    if (dtype == dtype_code<A>()) {
      in.read(host.data(), host.size() * sizeof(A));
    } else if (dtype == kDtypeF32) {
      std::vector<float> stored(tensor.numel);
      in.read(stored.data(), stored.size() * sizeof(float));
      for (std::size_t i = 0; i < host.size(); ++i) host[i] = A(stored[i]);
    } else {
      std::vector<double> stored(tensor.numel);
      in.read(stored.data(), stored.size() * sizeof(double));
      for (std::size_t i = 0; i < host.size(); ++i) host[i] = A(stored[i]);
    }
    for (std::size_t i = 0; i < host.size(); ++i) {
      LIGHTGPT_CHECK(std::isfinite(host[i]), in.context(), ": tensor '", name, "' holds ",
                     double(host[i]), " at element ", i, " (a diverged or corrupted model)");
    }
    store(tensor, host);
  }
}

}  // namespace detail

template <class Model>
void write_model_sections(CheckpointWriter& out, const Model& model) {
  using A = typename Model::A;
  out.add_section("config", model.config().serialize());
  out.add_section("composition", Model::composition());
  out.begin_section("parameters");
  detail::write_tensors<A>(out, model.parameters().layout(), "parameter",
                           [&](const TensorInfo& t) { return model.parameters().read(t); });
  out.end_section();
  // Head state that is not a parameter tensor (LightRnnHead's codebook) adds its own sections.
  if constexpr (requires { model.head().write_sections(out); }) model.head().write_sections(out);
}

// Loads config-checked parameters; the model must have been built with the same config.
template <class Model>
void read_model_sections(const CheckpointReader& in, Model& model) {
  using A = typename Model::A;
  const std::string source = "checkpoint '" + in.path().string() + "'";
  const std::string composition(in.section("composition").rest());
  LIGHTGPT_CHECK(composition == Model::composition(), source, " holds a model of composition '",
                 composition, "', but this model is '", Model::composition(), "'");
  model.check_config(ModelConfig::parse(in.section("config").rest(), source), source);
  SectionReader parameters = in.section("parameters");
  detail::read_tensors<A>(parameters, model.parameters().layout(),
                          [&](const TensorInfo& t, const std::vector<A>& values) {
                            model.parameters().write(t, values.data());
                          });
  LIGHTGPT_CHECK(parameters.at_end(), parameters.context(), ": unexpected bytes after the tensors");
  if constexpr (requires { model.head().read_sections(in); }) model.head().read_sections(in);
}

template <class Optimizer>
void write_optimizer_section(CheckpointWriter& out, const Optimizer& optimizer) {
  using A = std::remove_cv_t<std::remove_pointer_t<decltype(optimizer.first_moment())>>;
  using O = typename Optimizer::O;
  out.begin_section("adamw");
  out.write_value(static_cast<std::int64_t>(optimizer.steps()));
  for (const A* moment : {optimizer.first_moment(), optimizer.second_moment()}) {
    const char* what =
        moment == optimizer.first_moment() ? "AdamW first-moment" : "AdamW second-moment";
    detail::write_tensors<A>(out, optimizer.layout(), what, [&](const TensorInfo& t) {
      std::vector<A> host(t.numel);
      O::copy_to_host(host.data(), moment + t.offset, t.numel);
      return host;
    });
  }
  out.end_section();
  const std::size_t rows = Optimizer::sparse_row_count(optimizer.layout());
  if (rows > 0) {
    std::vector<std::int64_t> seen(rows);
    O::copy_to_host(seen.data(), optimizer.last_gradient_steps(), rows);
    out.begin_section("adamw_rows");
    out.write_value(static_cast<std::uint64_t>(rows));
    out.write(seen.data(), rows * sizeof(std::int64_t));
    out.end_section();
  }
}

template <class Optimizer>
void read_optimizer_section(const CheckpointReader& in, Optimizer& optimizer) {
  using A = std::remove_pointer_t<decltype(optimizer.first_moment())>;
  using O = typename Optimizer::O;
  SectionReader section = in.section("adamw");
  const auto steps = section.read_value<std::int64_t>();
  LIGHTGPT_CHECK(steps >= 0, section.context(), ": negative step count ", steps);
  for (A* moment : {optimizer.first_moment(), optimizer.second_moment()}) {
    detail::read_tensors<A>(section, optimizer.layout(),
                            [&](const TensorInfo& t, const std::vector<A>& values) {
                              O::copy_from_host(moment + t.offset, values.data(), t.numel);
                            });
  }
  LIGHTGPT_CHECK(section.at_end(), section.context(), ": unexpected bytes after the moments");
  const std::size_t rows = Optimizer::sparse_row_count(optimizer.layout());
  if (rows > 0) {
    LIGHTGPT_CHECK(in.has("adamw_rows"), section.context(),
                   ": the checkpoint lacks the section 'adamw_rows' that its sparse-row tensors "
                   "need");
    SectionReader row_section = in.section("adamw_rows");
    const auto count = row_section.read_value<std::uint64_t>();
    LIGHTGPT_CHECK(count == rows, row_section.context(), ": ", count,
                   " rows, the model's sparse-row tensors have ", rows);
    std::vector<std::int64_t> seen(rows);
    row_section.read(seen.data(), rows * sizeof(std::int64_t));
    LIGHTGPT_CHECK(row_section.at_end(), row_section.context(), ": unexpected bytes after the rows");
    for (std::size_t i = 0; i < rows; ++i) {
      LIGHTGPT_CHECK(seen[i] == kAdamWNeverSeen || (seen[i] >= 0 && seen[i] <= steps),
                     row_section.context(), ": row ", i, " was last updated at step ", seen[i],
                     ", outside [0, ", steps, "] (corrupted file)");
    }
    O::copy_from_host(optimizer.last_gradient_steps(), seen.data(), rows);
  }
  optimizer.set_steps(steps);
}

// Writes model (+ optimizer) state and the step atomically: `path` is replaced only when the
// whole file has been written.
template <class Model>
void save_checkpoint(const std::filesystem::path& path, const Model& model, std::uint64_t step) {
  CheckpointWriter out(path);
  write_model_sections(out, model);
  out.begin_section("step");
  out.write_value(step);
  out.end_section();
  out.commit();
}

template <class Model, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, const Model& model,
                     const Optimizer& optimizer, std::uint64_t step) {
  CheckpointWriter out(path);
  write_model_sections(out, model);
  write_optimizer_section(out, optimizer);
  out.begin_section("step");
  out.write_value(step);
  out.end_section();
  out.commit();
}

// The model config a checkpoint states, checked before a program builds a model from it: valid,
// and not promising more parameters than the file holds (every composition has at least the
// trunk's positions, layer norms and MLPs, each value at least 4 bytes).
inline ModelConfig read_checkpoint_config(const CheckpointReader& in) {
  const std::string source = "checkpoint '" + in.path().string() + "'";
  const ModelConfig config = ModelConfig::parse(in.section("config").rest(), source);
  const std::uint64_t needed = checked_mul(config.trunk_parameter_count(), 4, source);
  const std::uint64_t held = in.section_size("parameters");
  LIGHTGPT_CHECK(held >= needed, source, ": its config (n_layer ", config.n_layer, ", d_model ",
                 config.d_model, ", max_seq_len ", config.max_seq_len, ") needs at least ",
                 needed, " bytes of parameters, the section 'parameters' holds ", held,
                 " (corrupted file)");
  return config;
}

inline std::uint64_t read_step_section(const CheckpointReader& in) {
  SectionReader section = in.section("step");
  const auto step = section.read_value<std::uint64_t>();
  LIGHTGPT_CHECK(section.at_end(), section.context(), ": unexpected bytes after the step");
  return step;
}

// Returns the step stored with the checkpoint.
template <class Model>
std::uint64_t load_checkpoint(const std::filesystem::path& path, Model& model) {
  CheckpointReader in(path);
  read_model_sections(in, model);
  return read_step_section(in);
}

template <class Model, class Optimizer>
std::uint64_t load_checkpoint(const std::filesystem::path& path, Model& model,
                              Optimizer& optimizer) {
  CheckpointReader in(path);
  read_model_sections(in, model);
  read_optimizer_section(in, optimizer);
  return read_step_section(in);
}

}  // namespace lightgpt
