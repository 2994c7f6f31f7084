// Runs before the first paint (a classic script in <head>): shows the page, not the
// sign-in form, when this tab already holds a key, so nothing jumps once the page loads.
try {
  if (window.sessionStorage.getItem("iccmatch.key")) document.documentElement.classList.add("has-key");
} catch (e) { /* storage blocked: the sign-in form stays */ }
