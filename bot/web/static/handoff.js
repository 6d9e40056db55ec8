// The handoff queue and a conversation with a person: new messages and queue changes
// appear without reloading (polling the console's own JSON endpoints), and a canned
// reply fills the reply box. Without this script every page still works by reloading.
(function () {
  "use strict";
  var POLL_MS = 2000;
  // Once the operator sends a form (takes, answers, closes), the page is on its way out:
  // a refresh now would cancel what they asked for.
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; }, true);

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          throw new Error("signed out or failed");
        }
        return response.json();
      });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function messageNode(m) {
    var classes = "msg " + (m.direction === "in" ? "in" : "out") + (m.staff ? " staff" : "") + " live";
    var article = element("article", classes);
    article.setAttribute("data-id", String(m.id));
    if (m.state === "pending") article.setAttribute("data-pending", "1");
    var header = element("header");
    header.appendChild(element("span", "author", m.author));
    header.appendChild(element("time", "", m.when));
    if (m.status) header.appendChild(element("span", "state state-" + m.state, m.status));
    article.appendChild(header);
    article.appendChild(element(m.pressed ? "p" : "div", m.pressed ? "press" : "text", m.text));
    if (m.buttons && m.buttons.length) {
      var buttons = element("div", "buttons");
      m.buttons.forEach(function (row) {
        var line = element("div", "brow");
        row.forEach(function (label) { line.appendChild(element("span", "btn", label)); });
        buttons.appendChild(line);
      });
      article.appendChild(buttons);
    }
    return article;
  }

  function typing() {
    var box = document.getElementById("reply-text");
    return box !== null && box.value.trim() !== "";
  }

  function changedNotice(text) {
    if (document.getElementById("live-changed")) return;
    var note = element("p", "notice", text);
    note.id = "live-changed";
    note.setAttribute("role", "status");
    var transcript = document.getElementById("transcript");
    transcript.parentNode.insertBefore(note, transcript);
  }

  function watchConversation(transcript) {
    var url = transcript.getAttribute("data-live");
    var after = parseInt(transcript.getAttribute("data-after") || "0", 10);
    var handoff = transcript.getAttribute("data-handoff") || "";
    function pendingIds() {
      var ids = [];
      transcript.querySelectorAll("article[data-pending]").forEach(function (node) {
        if (ids.length < 50) ids.push(node.getAttribute("data-id"));
      });
      return ids.join(",");
    }
    function delivered(updates) {
      Object.keys(updates || {}).forEach(function (id) {
        var node = transcript.querySelector('article[data-id="' + id + '"]');
        if (!node) return;
        node.removeAttribute("data-pending");
        var state = node.querySelector("header .state");
        if (!state) {
          state = element("span", "state");
          node.querySelector("header").appendChild(state);
        }
        state.className = "state state-" + updates[id].status;
        state.textContent = updates[id].label;
        if (updates[id].status === "failed" || updates[id].status === "expired") {
          node.classList.add("undelivered");
        }
      });
    }
    function poll() {
      if (leaving) return;
      getJson(url + "?after=" + after + "&pending=" + pendingIds()).then(function (data) {
        if (leaving) return;
        delivered(data.delivered);
        var nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
        data.messages.forEach(function (m) {
          if (m.id <= after) return;
          after = m.id;
          var empty = transcript.querySelector("p.empty");
          if (empty) empty.remove();
          transcript.appendChild(messageNode(m));
        });
        if (data.messages.length && nearBottom) transcript.lastChild.scrollIntoView({ block: "end" });
        if (data.handoff !== handoff) {
          if (typing()) {
            changedNotice("Состояние разговора изменилось. Отправьте ответ или обновите страницу.");
          } else {
            window.location.reload();
            return;
          }
        }
        window.setTimeout(poll, POLL_MS);
      }).catch(function () { window.setTimeout(poll, POLL_MS * 5); });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function watchQueue(marker) {
    var url = marker.getAttribute("data-url");
    var seen = marker.getAttribute("data-fingerprint");
    function poll() {
      if (leaving) return;
      getJson(url).then(function (data) {
        if (leaving) return;
        if (data.fingerprint !== seen) {
          window.location.replace("/queue");
          return;
        }
        window.setTimeout(poll, POLL_MS);
      }).catch(function () { window.setTimeout(poll, POLL_MS * 5); });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function cannedReplies(select) {
    select.addEventListener("change", function () {
      var chosen = select.options[select.selectedIndex];
      var text = chosen ? chosen.getAttribute("data-text") : "";
      var box = document.getElementById("reply-text");
      if (text && box) {
        box.value = text;
        box.focus();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var transcript = document.getElementById("transcript");
    if (transcript && transcript.getAttribute("data-live")) watchConversation(transcript);
    var queue = document.getElementById("queue-live");
    if (queue) watchQueue(queue);
    var canned = document.getElementById("canned");
    if (canned) cannedReplies(canned);
  });
})();
