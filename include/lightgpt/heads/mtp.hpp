// MTP<K>: multi-token prediction as a head option. K counts the predicted tokens per position:
// MTP<1> is next-token prediction only; MTP<K> adds auxiliary losses for targets t+2 … t+K,
// weighted at run time by w_mtp (DESIGN: L = L_main + w_mtp · mean_j L_aux(j)).
#pragma once

#include <concepts>

namespace lightgpt {

template <int K>
struct MTP {
  static_assert(K >= 1,
                "MTP<K>: K is the number of predicted tokens per position (MTP<1> = next token "
                "only) and must be at least 1");
  static constexpr int depth = K;
};

namespace detail {
template <class T>
struct is_mtp : std::false_type {};
template <int K>
struct is_mtp<MTP<K>> : std::true_type {};
}  // namespace detail

template <class T>
concept MtpPolicy = detail::is_mtp<T>::value;

}  // namespace lightgpt
