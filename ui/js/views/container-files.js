// The container detail's Files tab: the shared file browser (../files.js) over the container's
// filesystem: `docker cp c:/path .` to read and save, `docker cp file c:/folder/` to upload.

import { call } from "../api.js";
import { $ } from "../dom.js";
import { FileBrowser, uploadHeaders } from "../files.js";

let browser = null;

/** The browser's source for container `id`. */
function containerSource(id) {
  return {
    key: `container:${id}`,
    what: "the container",
    list: (path) => call("containers_files_list", { id, path }),
    read: (path) => call("containers_files_read", { id, path }),
    save: (path, dir) => call("containers_files_save", { id, path, dir }),
    upload: (dir, name, data) =>
      call("containers_files_upload", data, { headers: uploadHeaders("x-berth-id", id, dir, name) }),
    uploadPaths: (dir, paths) => call("containers_files_upload_paths", { id, dir, paths }),
  };
}

/** Opens the tab on container `id` (at the root the first time, else where it was). */
export async function openFiles(id) {
  await browser.open(containerSource(id));
}

export function initFiles() {
  browser = new FileBrowser($("container-files"));
}
