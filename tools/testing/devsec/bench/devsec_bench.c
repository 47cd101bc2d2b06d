// SPDX-License-Identifier: GPL-2.0
/*
 * devsec_bench: in-kernel helpers for 'make bench' (debugfs devsec_bench/).
 *
 * hotpath   Reading it times device_cc_accepted(), implemented in Rust in
 *           drivers/base/coco.rs, against a C function doing the same bit
 *           test, both called out of line on the same accepted device, in
 *           alternating rounds.  device_cc_accepted() is deliberately not
 *           exported to modules, hence this file is built-in.
 * deferred  Writing N makes N platform devices exist whose driver always
 *           returns -EPROBE_DEFER, so that they sit in the driver core's
 *           deferred-probe list while acceptance is measured; 0 removes
 *           them.  Reading returns the current number of devices and
 *           the number of probe calls their driver has had so far.
 *
 * Test tooling of the coco-accept overlay, not part of the upstream series:
 * patches/tools-testing-devsec-bench-hook.patch builds it into the kernel
 * (CONFIG_DEVSEC_BENCH, set in configs/base.config).
 */

#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/init.h>
#include <linux/ktime.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/preempt.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "base.h"	/* struct device_private, for the C baseline */

#define BENCH_CALLS	10000000UL
#define BENCH_ROUNDS	11
#define DEFER_MAX	4096
#define DEFER_NAME	"devsec_bench_defer"
#define HOT_NAME	"devsec_bench_hot"

/*
 * Where the code sits matters under QEMU TCG, where the benchmark runs: a
 * direct call into the caller's own page is chained to the callee's
 * translated code, a call into another page is looked up on every call.
 * device_cc_accepted() lives in drivers/base/coco.o, so the loops and the
 * C baseline are each page-aligned, which puts every call of both variants
 * across a page.  "near" is the naive baseline, static and next to its loop,
 * to show what placement alone is worth.
 */

noinline __aligned(PAGE_SIZE) bool devsec_bench_c_accepted(struct device *dev);

/**
 * devsec_bench_c_accepted() - C baseline for device_cc_accepted()
 * @dev: device
 *
 * The same test as device_cc_accepted() in drivers/base/coco.rs, written
 * in C: a global, out-of-line function like the one it is compared with
 * (hence the same ENDBR64 landing pad with IBT).
 *
 * Return: true if @dev is registered and accepted.
 */
bool devsec_bench_c_accepted(struct device *dev)
{
	struct device_private *p = dev->p;

	return p && p->cc_accepted;
}

/*
 * The loops share one body so that they are identical but for the callee:
 * always inlined with a constant @callee, it becomes a direct call.  The
 * empty asm makes @dev unknown to the compiler in every iteration, so a call
 * cannot be hoisted out of the loop or merged with the previous one; summing
 * the results keeps the calls from being dropped and lets the caller check
 * every answer.
 */
static __always_inline unsigned long
devsec_bench_loop(bool (*callee)(struct device *dev), struct device *dev,
		  unsigned long n)
{
	unsigned long i, hits = 0;

	for (i = 0; i < n; i++) {
		asm volatile("" : "+r" (dev));
		hits += callee(dev);
	}
	return hits;
}

static noinline __aligned(PAGE_SIZE) unsigned long
devsec_bench_loop_rust(struct device *dev, unsigned long n)
{
	return devsec_bench_loop(device_cc_accepted, dev, n);
}

static noinline __aligned(PAGE_SIZE) unsigned long
devsec_bench_loop_c(struct device *dev, unsigned long n)
{
	return devsec_bench_loop(devsec_bench_c_accepted, dev, n);
}

/*
 * The naive baseline and its loop share a section that is page-aligned and
 * far smaller than a page, so they share a page whatever the emission order.
 */
asm(".pushsection .text.devsec_bench_near, \"ax\"\n\t.balign 4096\n\t.popsection");

static noinline __section(".text.devsec_bench_near") bool
devsec_bench_c_accepted_near(struct device *dev)
{
	struct device_private *p = dev->p;

	return p && p->cc_accepted;
}

static noinline __section(".text.devsec_bench_near") unsigned long
devsec_bench_loop_near(struct device *dev, unsigned long n)
{
	return devsec_bench_loop(devsec_bench_c_accepted_near, dev, n);
}

static const char *devsec_bench_preempt_model(void)
{
	if (IS_ENABLED(CONFIG_PREEMPT_RT))
		return "rt";
	if (IS_ENABLED(CONFIG_PREEMPT))
		return "full";
	if (IS_ENABLED(CONFIG_PREEMPT_VOLUNTARY))
		return "voluntary";
	if (IS_ENABLED(CONFIG_PREEMPT_LAZY))
		return "lazy";
	return "none";
}

/* Both variants must say yes for @yes and no for @no. */
static int devsec_bench_check(struct device *yes, struct device *no)
{
	int errors = 0;

	errors += device_cc_accepted(yes) != true;
	errors += devsec_bench_c_accepted(yes) != true;
	errors += device_cc_accepted(no) != false;
	errors += devsec_bench_c_accepted(no) != false;
	errors += devsec_bench_c_accepted_near(yes) != true;
	errors += devsec_bench_c_accepted_near(no) != false;
	errors += devsec_bench_loop_rust(no, 1000) != 0;
	errors += devsec_bench_loop_c(no, 1000) != 0;
	errors += devsec_bench_loop_near(no, 1000) != 0;
	return errors;
}

/* The loops are called through pointers; the calls inside them are direct. */
static const struct devsec_bench_variant {
	const char *name;
	unsigned long (*loop)(struct device *dev, unsigned long n);
} devsec_bench_variants[] = {
	{ "rust", devsec_bench_loop_rust },
	{ "c", devsec_bench_loop_c },
	{ "c_near", devsec_bench_loop_near },
};

static int devsec_bench_hotpath_show(struct seq_file *m, void *unused)
{
	struct platform_device *yes, *no;
	unsigned long hits;
	int errors, ret, i;
	unsigned int v;
	u64 t0, t1;

	/* Two real, registered devices without a driver: one accepted, one not. */
	yes = platform_device_register_simple(HOT_NAME, 0, NULL, 0);
	if (IS_ERR(yes))
		return PTR_ERR(yes);
	no = platform_device_register_simple(HOT_NAME, 1, NULL, 0);
	if (IS_ERR(no)) {
		ret = PTR_ERR(no);
		goto out_yes;
	}
	device_lock(&yes->dev);
	ret = device_cc_accept(&yes->dev);
	device_unlock(&yes->dev);
	if (ret) {
		dev_err(&yes->dev, "device_cc_accept() failed: %d\n", ret);
		goto out_no;
	}

	errors = devsec_bench_check(&yes->dev, &no->dev);
	seq_printf(m, "calls %lu\nrounds %d\npreempt %s\n", BENCH_CALLS,
		   BENCH_ROUNDS, devsec_bench_preempt_model());

	/* Alternate the variants so that drift in the host hits all alike. */
	for (i = 0; i < BENCH_ROUNDS; i++) {
		for (v = 0; v < ARRAY_SIZE(devsec_bench_variants); v++) {
			const struct devsec_bench_variant *bv = &devsec_bench_variants[v];

			preempt_disable();
			t0 = ktime_get_ns();
			hits = bv->loop(&yes->dev, BENCH_CALLS);
			t1 = ktime_get_ns();
			preempt_enable();
			errors += hits != BENCH_CALLS;
			seq_printf(m, "round %d %s %llu\n", i, bv->name, t1 - t0);
		}
		cond_resched();
	}
	seq_printf(m, "errors %d\n", errors);

	device_lock(&yes->dev);
	ret = device_cc_reject(&yes->dev);
	device_unlock(&yes->dev);
	if (ret)
		dev_err(&yes->dev, "device_cc_reject() failed: %d\n", ret);
out_no:
	platform_device_unregister(no);
out_yes:
	platform_device_unregister(yes);
	return ret;
}
DEFINE_SHOW_ATTRIBUTE(devsec_bench_hotpath);

static atomic_t devsec_bench_defer_probes = ATOMIC_INIT(0);

static int devsec_bench_defer_probe(struct platform_device *pdev)
{
	atomic_inc(&devsec_bench_defer_probes);
	return dev_err_probe(&pdev->dev, -EPROBE_DEFER,
			     "devsec_bench: always deferred\n");
}

static struct platform_driver devsec_bench_defer_driver = {
	.probe = devsec_bench_defer_probe,
	.driver = {
		.name = DEFER_NAME,
	},
};

static DEFINE_MUTEX(devsec_bench_defer_lock);
static struct platform_device **devsec_bench_defer_devs;
static unsigned int devsec_bench_defer_count;

/* Add or remove deferring devices until there are @n; caller holds the lock. */
static int devsec_bench_defer_set(unsigned int n)
{
	struct platform_device *pdev;

	while (devsec_bench_defer_count > n) {
		pdev = devsec_bench_defer_devs[--devsec_bench_defer_count];
		platform_device_unregister(pdev);
	}
	while (devsec_bench_defer_count < n) {
		pdev = platform_device_register_simple(DEFER_NAME,
						       devsec_bench_defer_count,
						       NULL, 0);
		if (IS_ERR(pdev)) {
			pr_err("devsec_bench: cannot register %s.%u: %pe\n",
			       DEFER_NAME, devsec_bench_defer_count, pdev);
			return PTR_ERR(pdev);
		}
		devsec_bench_defer_devs[devsec_bench_defer_count++] = pdev;
	}
	return 0;
}

static ssize_t devsec_bench_deferred_write(struct file *file,
					   const char __user *buf,
					   size_t count, loff_t *ppos)
{
	unsigned int n;
	int ret;

	ret = kstrtouint_from_user(buf, count, 0, &n);
	if (ret)
		return ret;
	if (n > DEFER_MAX)
		return -ERANGE;

	mutex_lock(&devsec_bench_defer_lock);
	ret = devsec_bench_defer_set(n);
	mutex_unlock(&devsec_bench_defer_lock);
	return ret ?: count;
}

static int devsec_bench_deferred_show(struct seq_file *m, void *unused)
{
	mutex_lock(&devsec_bench_defer_lock);
	seq_printf(m, "%u %d\n", devsec_bench_defer_count,
		   atomic_read(&devsec_bench_defer_probes));
	mutex_unlock(&devsec_bench_defer_lock);
	return 0;
}

static int devsec_bench_deferred_open(struct inode *inode, struct file *file)
{
	return single_open(file, devsec_bench_deferred_show, NULL);
}

static const struct file_operations devsec_bench_deferred_fops = {
	.owner = THIS_MODULE,
	.open = devsec_bench_deferred_open,
	.read = seq_read,
	.write = devsec_bench_deferred_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init devsec_bench_init(void)
{
	struct dentry *dir;
	int ret;

	devsec_bench_defer_devs = kcalloc(DEFER_MAX,
					  sizeof(*devsec_bench_defer_devs),
					  GFP_KERNEL);
	if (!devsec_bench_defer_devs)
		return -ENOMEM;

	ret = platform_driver_register(&devsec_bench_defer_driver);
	if (ret) {
		pr_err("devsec_bench: cannot register the deferring driver: %d\n",
		       ret);
		kfree(devsec_bench_defer_devs);
		return ret;
	}

	dir = debugfs_create_dir("devsec_bench", NULL);
	debugfs_create_file("hotpath", 0400, dir, NULL,
			    &devsec_bench_hotpath_fops);
	debugfs_create_file("deferred", 0600, dir, NULL,
			    &devsec_bench_deferred_fops);
	return 0;
}
late_initcall(devsec_bench_init);
