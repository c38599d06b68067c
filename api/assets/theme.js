// Applies the remembered theme before the first paint (loaded synchronously from <head>).
(function () {
  try {
    var t = localStorage.getItem("sdash.theme");
    if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
  } catch (e) { /* storage disabled: follow prefers-color-scheme */ }
})();
