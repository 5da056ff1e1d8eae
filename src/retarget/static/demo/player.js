// A tiny VAST player for the demo video site: fetch the VAST, play its MediaFile, ping its
// Impression when playback starts, and link its ClickThrough. URLs from the VAST are used
// only when they are http(s); nothing from it is ever inserted as HTML.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var video = document.getElementById("player-video");
  var status = document.getElementById("player-status");
  var click = document.getElementById("player-click");

  function httpUrl(text) {
    try {
      var url = new URL((text || "").trim(), document.baseURI);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function first(doc, name) {
    var found = doc.getElementsByTagName(name);
    return found.length ? found[0].textContent : null;
  }

  function noAd(why) {
    player.dataset.state = "no-ad";
    status.textContent = "No ad right now (" + why + ").";
    video.hidden = true;
  }

  fetch(player.dataset.vastUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("VAST answered " + response.status);
      return response.text();
    })
    .then(function (text) {
      var vast = new DOMParser().parseFromString(text, "application/xml");
      var media = httpUrl(first(vast, "MediaFile"));
      if (!media) return noAd(vast.getElementsByTagName("Ad").length ? "no media" : "no fill");
      var clickThrough = httpUrl(first(vast, "ClickThrough"));
      var impression = httpUrl(first(vast, "Impression"));
      player.dataset.state = "ad";
      status.textContent = "Advertisement";
      if (clickThrough) {
        click.href = clickThrough;
        click.hidden = false;
      }
      video.addEventListener("playing", function once() {
        video.removeEventListener("playing", once);
        player.dataset.state = "playing";
        if (impression) new Image().src = impression;
      });
      video.addEventListener("error", function () {
        player.dataset.state = "media-error";
        status.textContent = "Advertisement (the video could not be played)";
      });
      video.src = media;
      var playing = video.play();
      if (playing && playing.catch) playing.catch(function () {});
    })
    .catch(function (error) {
      noAd(error.message);
    });
})();
