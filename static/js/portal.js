// What the pages do in script, kept out of the HTML so that the Content-Security-Policy
// can forbid inline script and eval (htmx runs with allowEval off).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select) select.form.submit();
});
document.addEventListener("click", (event) => {
  const remove = event.target.closest("[data-remove-pool]");
  if (!remove) return;
  remove.closest(".pool-row").remove();
  htmx.trigger("#cluster-form", "change");
});
// A cluster page polls only while its websocket is down.
document.addEventListener("htmx:wsOpen", () => document.body.classList.add("ws-live"));
document.addEventListener("htmx:wsClose", () => document.body.classList.remove("ws-live"));
document.addEventListener("htmx:confirm", (event) => {
  if (event.target.matches("[data-poll-fallback]") && document.body.classList.contains("ws-live")) {
    event.preventDefault();
  }
});
// A banner about an action under way ("Launching web.") goes once the page shows it live.
document.addEventListener("htmx:oobAfterSwap", () => {
  document.querySelectorAll(".msg.transient").forEach((banner) => banner.remove());
});
