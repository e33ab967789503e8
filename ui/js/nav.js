// Moving between views from inside one (a project's "Logs" opens the Logs view): main.js
// registers how to show a view, views call `navigate`.

let showView = () => {};

export function setNavigator(fn) {
  showView = fn;
}

export function navigate(view) {
  showView(view);
}
