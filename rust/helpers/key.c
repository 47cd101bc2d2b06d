// SPDX-License-Identifier: GPL-2.0

#include <linux/key.h>

/* Without CONFIG_KEYS these are macros, and there are no keys to refer to. */
#ifdef CONFIG_KEYS
__rust_helper key_ref_t rust_helper_make_key_ref(const struct key *key,
						 bool possession)
{
	return make_key_ref(key, possession);
}

__rust_helper struct key *rust_helper_key_ref_to_ptr(const key_ref_t key_ref)
{
	return key_ref_to_ptr(key_ref);
}

__rust_helper key_serial_t rust_helper_key_serial(const struct key *key)
{
	return key_serial(key);
}
#endif
