// SPDX-License-Identifier: GPL-2.0
/*
 * berth_fsnotify: lets Berth's guest agent replay host file events as the kernel would give them.
 *
 * virtiofs carries no host inotify, and user space cannot queue inotify events, so the agent
 * writes one record per host event to /dev/berth-fsnotify and this module raises the fsnotify
 * event a local change would have raised: IN_CREATE, IN_MODIFY, IN_DELETE, or IN_MOVED_FROM +
 * IN_MOVED_TO with one cookie (and IN_MOVE_SELF). It also drops the guest's cached dentry of a
 * name the host changed, so the next lookup asks virtiofsd again (fresh size, no stale pages).
 *
 * One write is one record (ABI version 1, native endianness):
 *
 *   struct { u32 version; u32 kind; u32 path_len; u32 to_len; } then path_len bytes of an
 *   absolute path, then (kind MOVE only) to_len bytes of the path it moved to.
 *
 * kind: 1 create, 2 modify, 3 delete, 4 move. Paths have no NUL and name an entry of an existing
 * directory (the last component is neither "." nor ".."). A malformed record fails with EINVAL,
 * a directory that does not resolve with its lookup error; only CAP_SYS_ADMIN may write.
 */

#include <linux/capability.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/fsnotify.h>
#include <linux/limits.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#define BERTH_FSNOTIFY_ABI 1

enum berth_kind {
	BERTH_CREATE = 1,
	BERTH_MODIFY = 2,
	BERTH_DELETE = 3,
	BERTH_MOVE = 4,
};

struct berth_record {
	u32 version;
	u32 kind;
	u32 path_len;
	u32 to_len;
};

/* A directory entry named by an absolute path: its resolved parent and its name. */
struct berth_entry {
	struct path dir;
	struct qstr name;
};

/* Splits the NUL-terminated absolute @path at its last '/' and resolves the directory. */
static int entry_get(char *path, struct berth_entry *e)
{
	char *slash = strrchr(path, '/');
	const char *name;
	int err;

	if (path[0] != '/' || !slash)
		return -EINVAL;
	name = slash + 1;
	if (!*name || strlen(name) > NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (slash == path) {
		err = kern_path("/", LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &e->dir);
	} else {
		*slash = '\0';
		err = kern_path(path, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &e->dir);
		*slash = '/';
	}
	if (err)
		return err;
	e->name = (struct qstr)QSTR_INIT(name, strlen(name));
	return 0;
}

static void entry_put(struct berth_entry *e)
{
	path_put(&e->dir);
}

static struct inode *dir_inode(const struct berth_entry *e)
{
	return d_inode(e->dir.dentry);
}

/*
 * Whether @d may be dropped from the dcache. d_invalidate() detaches every mount on it or below
 * it, in every namespace (a container's bind mount onto a path in a share): a positive folder is
 * left to virtiofs's own revalidation (the VFS moves its one alias when the new name is looked
 * up), and neither is anything mounted on.
 */
static bool may_drop(struct dentry *d)
{
	return d_really_is_negative(d) || (!d_is_dir(d) && !d_mountpoint(d));
}

/*
 * The cached dentry of @e, dropped from the dcache when that is safe (the host changed that
 * name; virtiofs's entry timeout would keep the stale one for up to a second). Returns the
 * dentry with a reference when it was positive (the caller reports its inode), else NULL.
 */
static struct dentry *drop_cached(struct berth_entry *e)
{
	struct qstr q = e->name;
	struct dentry *d = d_hash_and_lookup(e->dir.dentry, &q);

	if (IS_ERR_OR_NULL(d))
		return NULL;
	if (may_drop(d))
		d_invalidate(d);
	if (d_really_is_negative(d)) {
		dput(d);
		return NULL;
	}
	return d;
}

/* Looks @e up afresh (through virtiofsd); a positive dentry with a reference, else NULL. */
static struct dentry *lookup_fresh(struct berth_entry *e)
{
	struct dentry *d = lookup_one_len_unlocked(e->name.name, e->dir.dentry, e->name.len);

	if (IS_ERR(d))
		return NULL;
	if (d_really_is_negative(d)) {
		dput(d);
		return NULL;
	}
	return d;
}

/*
 * Reports @mask on the name of @e to its directory's watchers, as fsnotify_name() does for a
 * local change: with the child's inode when it is known, else with the directory's (inotify
 * reports the name and the watch only; the inode is needed for its superblock).
 */
static void notify_name(struct berth_entry *e, u32 mask, struct dentry *child, u32 cookie)
{
	if (child) {
		if (d_is_dir(child))
			mask |= FS_ISDIR;
		fsnotify_name(mask, child, FSNOTIFY_EVENT_DENTRY, dir_inode(e), &e->name, cookie);
	} else {
		fsnotify_name(mask, dir_inode(e), FSNOTIFY_EVENT_INODE, dir_inode(e), &e->name,
			      cookie);
	}
}

static void replay_create(struct berth_entry *e)
{
	struct dentry *child;

	dput(drop_cached(e));
	child = lookup_fresh(e);
	notify_name(e, FS_CREATE, child, 0);
	dput(child);
}

static void replay_modify(struct berth_entry *e)
{
	struct dentry *child;

	/* A fresh lookup refreshes the size and drops stale pages (virtiofs's attribute timeout). */
	dput(drop_cached(e));
	child = lookup_fresh(e);

	/* As fsnotify_modify(): the parent's watchers with the name, the file's own without. */
	if (child)
		fsnotify_dentry(child, FS_MODIFY);
	dput(child);
}

static void replay_delete(struct berth_entry *e)
{
	struct dentry *gone = drop_cached(e);

	notify_name(e, FS_DELETE, gone, 0);
	dput(gone);
}

static void replay_move(struct berth_entry *from, struct berth_entry *to)
{
	u32 cookie = fsnotify_get_cookie();
	struct dentry *old = drop_cached(from);
	struct dentry *moved;

	dput(drop_cached(to));
	moved = lookup_fresh(to);
	notify_name(from, FS_MOVED_FROM, moved ? moved : old, cookie);
	notify_name(to, FS_MOVED_TO, moved, cookie);
	if (moved)
		fsnotify_inode(d_inode(moved), FS_MOVE_SELF);
	dput(moved);
	dput(old);
}

/* Checks the record's header against the write's size; the paths follow it. */
static int record_check(const struct berth_record *r, size_t count)
{
	if (r->version != BERTH_FSNOTIFY_ABI)
		return -EINVAL;
	if (r->kind < BERTH_CREATE || r->kind > BERTH_MOVE)
		return -EINVAL;
	if (r->path_len == 0 || r->path_len >= PATH_MAX || r->to_len >= PATH_MAX)
		return -EINVAL;
	if ((r->kind == BERTH_MOVE) != (r->to_len != 0))
		return -EINVAL;
	if (count != sizeof(*r) + r->path_len + r->to_len)
		return -EINVAL;
	return 0;
}

/* Copies @len bytes of a path from user space as a NUL-terminated string. */
static char *path_copy(const char __user *src, u32 len)
{
	char *p = memdup_user_nul(src, len);

	if (!IS_ERR(p) && strlen(p) != len) {
		kfree(p);
		return ERR_PTR(-EINVAL);
	}
	return p;
}

static int replay(const struct berth_record *r, char *path, char *to)
{
	struct berth_entry e, t;
	int err = entry_get(path, &e);

	if (err)
		return err;
	switch (r->kind) {
	case BERTH_CREATE:
		replay_create(&e);
		break;
	case BERTH_MODIFY:
		replay_modify(&e);
		break;
	case BERTH_DELETE:
		replay_delete(&e);
		break;
	case BERTH_MOVE:
		err = entry_get(to, &t);
		if (!err) {
			replay_move(&e, &t);
			entry_put(&t);
		}
		break;
	}
	entry_put(&e);
	return err;
}

static ssize_t berth_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
{
	struct berth_record r;
	char *path, *to = NULL;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (count < sizeof(r))
		return -EINVAL;
	if (copy_from_user(&r, buf, sizeof(r)))
		return -EFAULT;
	err = record_check(&r, count);
	if (err)
		return err;
	path = path_copy(buf + sizeof(r), r.path_len);
	if (IS_ERR(path))
		return PTR_ERR(path);
	if (r.to_len) {
		to = path_copy(buf + sizeof(r) + r.path_len, r.to_len);
		if (IS_ERR(to)) {
			kfree(path);
			return PTR_ERR(to);
		}
	}
	err = replay(&r, path, to);
	kfree(to);
	kfree(path);
	return err ? err : count;
}

static const struct file_operations berth_fops = {
	.owner = THIS_MODULE,
	.write = berth_write,
	.llseek = noop_llseek,
};

static struct miscdevice berth_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "berth-fsnotify",
	.fops = &berth_fops,
	.mode = 0200,
};

module_misc_device(berth_dev);

MODULE_DESCRIPTION("Replays host file events on shared folders as fsnotify events");
MODULE_LICENSE("GPL");
MODULE_VERSION("1");
