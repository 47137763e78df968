/*
 * Passkeys on asgi-session's built-in pages: sign in with one, add one, and the
 * browser's passkey autofill.
 *
 * The page inlines this script under its Content-Security-Policy nonce; everything it
 * needs is in data- attributes, so the page holds no other script and no inline handler.
 *
 * A button starts a ceremony:
 *   <button type="button" data-passkey="authenticate" (or "register")
 *           data-options="/auth/webauthn-options/passkey?action=authenticate"
 *           data-callback="/auth/callback/passkey" data-csrf="..."
 *           data-callback-url="/where-to-go-after">
 * An input asks for autofill (conditional mediation) where the browser offers it:
 *   <input autocomplete="username webauthn"
 *          data-passkey-autofill="/auth/webauthn-options/passkey?action=authenticate"
 *          data-callback="..." data-csrf="..." data-callback-url="...">
 * Failures are shown in the nearest [data-passkey-error] element (as text).
 *
 * It speaks what Auth.js's next-auth/webauthn client speaks: options come as
 * {action, options} (WebAuthn's JSON: base64url for bytes), and the answer is posted
 * as a form (csrfToken, action, data: the credential as JSON, callbackUrl) with
 * "X-Auth-Return-Redirect: 1", to which the server replies {url} to go to. Plain
 * ES2017, no dependencies.
 */
(function () {
  "use strict";

  var MESSAGES = {
    unsupported: "This browser cannot use passkeys.",
    NotAllowedError: "The passkey request was cancelled or timed out.",
    InvalidStateError: "This device already holds a passkey for this account.",
    NotSupportedError: "This device cannot make a passkey for this site.",
    SecurityError: "Passkeys cannot be used at this address.",
    AbortError: "The passkey request was cancelled.",
    failed: "The passkey could not be used. Try again.",
  };

  // The autofill request in flight: it holds a challenge, which a button's ceremony
  // replaces, so it is aborted before a button fetches its options.
  var autofillRequest = null;
  var busy = false;

  function supported() {
    return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
  }

  function toBuffer(base64url) {
    var base64 = String(base64url).replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptor(item) {
    return Object.assign({}, item, { id: toBuffer(item.id) });
  }

  function creationOptions(json) {
    var publicKey = Object.assign({}, json);
    publicKey.challenge = toBuffer(json.challenge);
    publicKey.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    if (Array.isArray(json.excludeCredentials)) {
      publicKey.excludeCredentials = json.excludeCredentials.map(descriptor);
    }
    return publicKey;
  }

  function requestOptions(json) {
    var publicKey = Object.assign({}, json);
    publicKey.challenge = toBuffer(json.challenge);
    if (Array.isArray(json.allowCredentials) && json.allowCredentials.length > 0) {
      publicKey.allowCredentials = json.allowCredentials.map(descriptor);
    } else {
      // Empty or absent: any passkey of this site may answer.
      delete publicKey.allowCredentials;
    }
    return publicKey;
  }

  function attachment(credential) {
    var value = credential.authenticatorAttachment;
    return value === "platform" || value === "cross-platform" ? value : undefined;
  }

  function extensionResults(credential) {
    try {
      return credential.getClientExtensionResults() || {};
    } catch (error) {
      return {};
    }
  }

  // Optional parts of a registration answer: some browser extensions that stand in
  // for an authenticator implement these methods badly; the server does not need them.
  function optional(read) {
    try {
      return read();
    } catch (error) {
      return undefined;
    }
  }

  // Both answers are encoded as SimpleWebAuthn encodes them, which Auth.js reads.
  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: attachment(credential),
      clientExtensionResults: extensionResults(credential),
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: optional(function () {
          return typeof response.getTransports === "function" ? response.getTransports() : undefined;
        }),
        publicKeyAlgorithm: optional(function () {
          return typeof response.getPublicKeyAlgorithm === "function"
            ? response.getPublicKeyAlgorithm()
            : undefined;
        }),
        publicKey: optional(function () {
          var key = typeof response.getPublicKey === "function" ? response.getPublicKey() : null;
          return key ? toBase64url(key) : undefined;
        }),
        authenticatorData: optional(function () {
          return typeof response.getAuthenticatorData === "function"
            ? toBase64url(response.getAuthenticatorData())
            : undefined;
        }),
      },
    };
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: attachment(credential),
      clientExtensionResults: extensionResults(credential),
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
      },
    };
  }

  // An error whose message is for the person, unlike the browser's own.
  function refusal(message) {
    var error = new Error(message);
    error.name = "PasskeyRefusal";
    return error;
  }

  async function readJSON(response) {
    try {
      return await response.json();
    } catch (error) {
      return null;
    }
  }

  async function fetchOptions(url, signal) {
    var response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: signal,
    });
    var body = await readJSON(response);
    if (!response.ok || !body || typeof body.options !== "object" || !body.options) {
      var said = body && typeof body.message === "string" ? body.message : "";
      throw refusal(said || MESSAGES.failed);
    }
    return body;
  }

  // Where to go, if the server named a page of a web address (never a javascript: URL).
  function destination(url) {
    if (typeof url !== "string" || !url) {
      return null;
    }
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  async function submit(settings, action, credential) {
    var body = new URLSearchParams();
    body.set("csrfToken", settings.csrf);
    body.set("action", action);
    body.set("data", JSON.stringify(credential));
    body.set("callbackUrl", settings.callbackUrl);
    var response = await fetch(settings.callback, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Auth-Return-Redirect": "1",
      },
      body: body,
    });
    var answer = await readJSON(response);
    var url = destination(answer && answer.url);
    if (!url && response.ok) {
      url = destination(settings.callbackUrl);
    }
    if (!url) {
      throw refusal(MESSAGES.failed);
    }
    var before = window.location.href;
    window.location.href = url;
    // A URL that differs only by its #fragment does not load the page; the session
    // changed, so it must be loaded again.
    if (url.indexOf("#") !== -1 && url.split("#")[0] === before.split("#")[0]) {
      window.location.reload();
    }
  }

  function settingsOf(element) {
    var data = element.dataset;
    return {
      callback: data.callback || "",
      csrf: data.csrf || "",
      callbackUrl: data.callbackUrl || window.location.href,
    };
  }

  function errorBox(element) {
    for (var node = element; node && node !== document; node = node.parentElement) {
      var box = node.querySelector("[data-passkey-error]");
      if (box) {
        return box;
      }
    }
    return null;
  }

  function show(element, message) {
    var box = errorBox(element);
    if (box) {
      box.textContent = message;
      box.hidden = !message;
    }
  }

  function messageFor(error) {
    if (error && error.name === "PasskeyRefusal") {
      return error.message;
    }
    return (error && MESSAGES[error.name]) || MESSAGES.failed;
  }

  function stopAutofill() {
    if (autofillRequest) {
      autofillRequest.abort();
      autofillRequest = null;
    }
  }

  async function ceremony(button) {
    if (busy) {
      return;
    }
    show(button, "");
    if (!supported()) {
      show(button, MESSAGES.unsupported);
      return;
    }
    busy = true;
    button.disabled = true;
    stopAutofill();
    var failed = false;
    try {
      var data = await fetchOptions(button.dataset.options);
      var action = data.action === "register" ? "register" : "authenticate";
      var credential =
        action === "register"
          ? await navigator.credentials.create({ publicKey: creationOptions(data.options) })
          : await navigator.credentials.get({ publicKey: requestOptions(data.options) });
      if (!credential) {
        throw refusal(MESSAGES.NotAllowedError);
      }
      await submit(
        settingsOf(button),
        action,
        action === "register" ? registrationJSON(credential) : authenticationJSON(credential)
      );
    } catch (error) {
      failed = true;
      show(button, messageFor(error));
    } finally {
      busy = false;
      button.disabled = false;
    }
    if (failed) {
      // The person may still pick a passkey from the autofill list instead.
      startAutofill();
    }
  }

  async function autofill(input) {
    if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") {
      return;
    }
    var available = false;
    try {
      available = await PublicKeyCredential.isConditionalMediationAvailable();
    } catch (error) {
      available = false;
    }
    if (!available || autofillRequest || busy) {
      return;
    }
    var controller = new AbortController();
    autofillRequest = controller;
    var submitting = false;
    try {
      var data = await fetchOptions(input.dataset.passkeyAutofill, controller.signal);
      var credential = await navigator.credentials.get({
        mediation: "conditional",
        publicKey: requestOptions(data.options),
        signal: controller.signal,
      });
      if (controller.signal.aborted || !credential || busy) {
        return;
      }
      autofillRequest = null;
      submitting = busy = true;
      await submit(settingsOf(input), "authenticate", authenticationJSON(credential));
    } catch (error) {
      if (controller.signal.aborted) {
        return; // a button took over, with a challenge of its own
      }
      autofillRequest = null;
      var name = error && error.name;
      if (!submitting && (name === "NotAllowedError" || name === "AbortError")) {
        // Nobody asked for this request: the browser ended it (no passkey for this
        // site, the list dismissed), which is nothing to tell the person about.
        return;
      }
      show(input, messageFor(error));
      if (submitting) {
        // The answer was refused and its challenge spent: offer the list again.
        busy = false;
        submitting = false;
        startAutofill();
      }
    } finally {
      if (submitting) {
        busy = false;
      }
    }
  }

  function startAutofill() {
    var input = document.querySelector('input[autocomplete$="webauthn"][data-passkey-autofill]');
    if (input) {
      autofill(input);
    }
  }

  function start() {
    var buttons = document.querySelectorAll('[data-passkey="authenticate"], [data-passkey="register"]');
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        ceremony(button);
      });
    });
    startAutofill();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
